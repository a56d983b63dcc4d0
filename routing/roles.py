"""Who is who on the floor. The roles are the Django groups `agent` and `supervisor` (the API
contract); staff users administer and may do whatever a supervisor does. Only members of the
`agent` group take calls: an agent record alone, or being staff, is not enough.

Roles change mid-shift, so a socket reads its person's role again with their session before
each screen that could name a caller (`still_signed_in`), and the router offers calls only to
people who hold the agent role at that moment (`takes_calls`, `takes_calls_sql`)."""

from __future__ import annotations

from functools import cache
from importlib import import_module
from types import SimpleNamespace
from typing import Any

from channels.db import database_sync_to_async
from django.conf import settings
from django.contrib import auth
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.db import connection
from django.db.models import Exists, Model, OuterRef
from django.utils import timezone
from django.utils.crypto import constant_time_compare

from infrastructure.database import on_loop, rows

AGENT_GROUP = "agent"
SUPERVISOR_GROUP = "supervisor"
# Whether staff hold the role without being in its group.
_STAFF_HOLD = {AGENT_GROUP: False, SUPERVISOR_GROUP: True}


def holds_role(user: Any, role: str) -> bool:
    """Whether `user` holds `role` (AGENT_GROUP or SUPERVISOR_GROUP) now: an active member of
    its group, or, for supervisor, staff."""
    if user is None or not user.is_authenticated or not user.is_active:
        return False
    if _STAFF_HOLD[role] and user.is_staff:
        return True
    return user.groups.filter(name=role).exists()


def _holds_role_by(role: str, user: Any, *, in_group: bool) -> bool:
    """`holds_role`, where the group membership was read already."""
    return user.is_active and ((_STAFF_HOLD[role] and user.is_staff) or in_group)


def is_supervisor(user: Any) -> bool:
    return holds_role(user, SUPERVISOR_GROUP)


def is_team_member(user: Any) -> bool:
    """An agent, a supervisor or staff: a person who serves customers, not a machine user."""
    if user is None or not user.is_authenticated:
        return False
    return user.is_staff or user.groups.filter(name__in=(AGENT_GROUP, SUPERVISOR_GROUP)).exists()


def takes_calls(user_field: str = "user") -> Exists:
    """For a query of agents (through their `user_field`): the person holds the agent role now
    (active, in the `agent` group). Nobody else is offered a call or sees a caller as an agent.
    A condition of its own, joining nothing to the query it filters (a locking read locks only
    its own rows)."""
    people = get_user_model().objects.filter(
        pk=OuterRef(f"{user_field}_id"), is_active=True, groups__name=AGENT_GROUP
    )
    return Exists(people)


def takes_calls_sql(person: str) -> str:
    """`takes_calls` for hand-written SQL: `person` is the alias of the agent's user row."""
    quote = connection.ops.quote_name
    member = _member_of_sql(get_user_model(), person, group=f"'{AGENT_GROUP}'")
    return f"({person}.{quote('is_active')} AND {member})"


def _member_of_sql(user_model: type[Model], person: str, *, group: str) -> str:
    """SQL: the user row `person` is a member of the group named by `group` (a literal or a
    placeholder)."""
    quote = connection.ops.quote_name
    groups = user_model._meta.get_field("groups")
    return (
        f"EXISTS (SELECT 1 FROM {quote(groups.remote_field.through._meta.db_table)} membership"
        f" JOIN {quote(groups.related_model._meta.db_table)} member_of"
        f" ON member_of.{quote('id')} = membership.{quote(groups.m2m_reverse_name())}"
        f" WHERE membership.{quote(groups.m2m_column_name())}"
        f" = {person}.{quote(user_model._meta.pk.column)}"
        f" AND member_of.{quote('name')} = {group})"
    )


def still_signed_in(user: Any, session_key: str | None, *, role: str) -> bool:
    """Whether the login session a socket was opened with is still `user`'s, and `user` still
    holds `role` (AGENT_GROUP or SUPERVISOR_GROUP): logging out, a password change, being
    deactivated or taken out of the role's group ends it. Read afresh, not from the socket's
    copy.

    Runs before every offer a socket is sent, so it reads the session, the user and their
    membership of the role's group in one statement and applies
    `django.contrib.auth.get_user`'s checks to what came back, rather than calling `get_user`,
    which reads them in two. Read only: where `get_user` would also flush a session whose hash
    no longer matches, or give one signed with a fallback secret a new key, the browser's next
    request does it (a socket has no cookie to send a new key with)."""
    if not _may_be_signed_in(user, session_key):
        return False
    if settings.SESSION_ENGINE != _DATABASE_SESSIONS:
        return _still_signed_in_as_get_user_reads_it(user, session_key, role=role)
    verdict = _verdict_on_row(user, _session_and_user_row(session_key, user.pk, role), role)
    if verdict is None:
        return _still_signed_in_as_get_user_reads_it(user, session_key, role=role)
    return verdict


async def still_signed_in_on_loop(user: Any, session_key: str | None, *, role: str) -> bool:
    """`still_signed_in`, for a socket: its one statement read on the event loop, not in a
    thread (see `infrastructure.database.on_loop`)."""
    if not _may_be_signed_in(user, session_key):
        return False
    if settings.SESSION_ENGINE == _DATABASE_SESSIONS:
        row = await on_loop.fetchone(
            _session_and_user_sql(_session_model(), get_user_model()),
            _session_and_user_params(session_key, user.pk, role),
        )
        verdict = _verdict_on_row(user, row, role)
        if verdict is not None:
            return verdict
    return await database_sync_to_async(_still_signed_in_as_get_user_reads_it)(
        user, session_key, role=role
    )


def _may_be_signed_in(user: Any, session_key: str | None) -> bool:
    return bool(session_key) and user is not None and user.is_authenticated


def _verdict_on_row(user: Any, row: tuple[Any, ...] | None, role: str) -> bool | None:
    """`get_user`'s checks on the session and user the statement read, and the role; None
    where the user's backend finds users its own way, so only `get_user` can tell."""
    if row is None:
        return False
    session_data, user_values, in_group = row[0], row[1:-1], row[-1]
    session = import_module(_DATABASE_SESSIONS).SessionStore().decode(session_data)
    try:
        user_id = auth._get_user_session_key(SimpleNamespace(session=session))
        backend_path = session[auth.BACKEND_SESSION_KEY]
    except KeyError:
        return False
    if user_id != user.pk or backend_path not in settings.AUTHENTICATION_BACKENDS:
        return False
    backend = auth.load_backend(backend_path)
    if type(backend).get_user is not ModelBackend.get_user:
        return None
    current = rows.instance(get_user_model(), user_values)
    if not backend.user_can_authenticate(current):
        return False
    return _session_hash_verified(session.get(auth.HASH_SESSION_KEY), current) and _holds_role_by(
        role, current, in_group=in_group
    )


_DATABASE_SESSIONS = "django.contrib.sessions.backends.db"


def _session_model() -> type[Model]:
    return import_module(_DATABASE_SESSIONS).SessionStore.get_model_class()


def _session_and_user_row(session_key: str, user_id: Any, role: str) -> tuple[Any, ...] | None:
    """The session's data, the user's columns and whether they are in `role`'s group, or
    None where the session is gone or expired (as the database session store reads it) or
    the user is gone."""
    with rows.prepared_cursor() as cursor:
        cursor.execute(
            _session_and_user_sql(_session_model(), get_user_model()),
            _session_and_user_params(session_key, user_id, role),
        )
        return cursor.fetchone()


def _session_and_user_params(session_key: str, user_id: Any, role: str) -> list[Any]:
    return [role, session_key, timezone.now(), user_id]


@cache
def _session_and_user_sql(session_model: type[Model], user_model: type[Model]) -> str:
    quote = connection.ops.quote_name
    return (
        f"SELECT s.{quote('session_data')}, {rows.columns(user_model, 'u')},"
        f" {_member_of_sql(user_model, 'u', group='%s')}"
        f" FROM {quote(session_model._meta.db_table)} s, {quote(user_model._meta.db_table)} u"
        f" WHERE s.{quote('session_key')} = %s AND s.{quote('expire_date')} > %s"
        f" AND u.{quote(user_model._meta.pk.column)} = %s"
    )


def _session_hash_verified(session_hash: str | None, user: Any) -> bool:
    """`get_user`'s check that the session was made with the user's current password: under
    the secret key, or one of SECRET_KEY_FALLBACKS."""
    if not hasattr(user, "get_session_auth_hash"):
        return True
    if not session_hash:
        return False
    return constant_time_compare(session_hash, user.get_session_auth_hash()) or any(
        constant_time_compare(session_hash, fallback_hash)
        for fallback_hash in user.get_session_auth_fallback_hash()
    )


def _still_signed_in_as_get_user_reads_it(user: Any, session_key: str, *, role: str) -> bool:
    """The general answer, for a session engine or backend the one statement does not know."""
    session = import_module(settings.SESSION_ENGINE).SessionStore(session_key)
    current = auth.get_user(SimpleNamespace(session=session))
    return current.is_authenticated and current.pk == user.pk and holds_role(current, role)
