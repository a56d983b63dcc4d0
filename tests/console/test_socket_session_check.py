"""The agent socket's check, before each offer, that its login session is still its user's and
they are still an agent: in one statement, with every way a session ends still ending it
(issue 14), and leaving the agent group too (issue 26)."""

import json
from collections.abc import Callable
from datetime import timedelta

import pytest
from asgiref.sync import SyncToAsync, async_to_sync
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib import auth
from django.contrib.auth.models import Group, User
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.sessions.models import Session
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from infrastructure.database import on_loop
from rapport.asgi import application
from routing import roles, router
from routing.models import Offer
from routing.states import OfferState
from tests.support.routing import arrive
from tests.support.sockets import fresh_channel_layer  # noqa: F401 (fixture)

pytestmark = pytest.mark.usefixtures("fast_logins")


def _session_key(user: User) -> str:
    client = Client()
    client.force_login(user)
    return client.cookies["sessionid"].value


def _headers(session_key: str) -> list[tuple[bytes, bytes]]:
    return [
        (b"origin", b"http://localhost"),
        (b"host", b"localhost"),
        (b"cookie", f"sessionid={session_key}".encode()),
    ]


def _ring(queue) -> Offer:
    call = arrive(queue=queue, number="+14155550123", publish=False)
    router.route_call(call.id)
    return Offer.objects.get(call=call, state=OfferState.OFFERED)


# Ways a session ends without anyone telling the socket (no logout signal, no session.ended).


def _logged_out_elsewhere(user: User, session_key: str) -> None:
    SessionStore(session_key).flush()


def _expired(user: User, session_key: str) -> None:
    Session.objects.filter(session_key=session_key).update(
        expire_date=timezone.now() - timedelta(seconds=1)
    )


def _password_changed(user: User, session_key: str) -> None:
    user = User.objects.get(pk=user.pk)
    user.set_password("a-new-password")
    user.save()


def _deactivated(user: User, session_key: str) -> None:
    User.objects.filter(pk=user.pk).update(is_active=False)


def _now_another_users(user: User, session_key: str) -> None:
    """The session row now says someone else is signed in with it."""
    other = User.objects.create_user("morgan", password="pw-morgan")
    session = SessionStore(session_key)
    session[auth.SESSION_KEY] = str(other.pk)
    session[auth.HASH_SESSION_KEY] = other.get_session_auth_hash()
    session.save()


def _backend_no_longer_configured(user: User, session_key: str) -> None:
    session = SessionStore(session_key)
    session[auth.BACKEND_SESSION_KEY] = "django.contrib.auth.backends.RemoteUserBackend"
    session.save()


def _hash_missing(user: User, session_key: str) -> None:
    session = SessionStore(session_key)
    del session[auth.HASH_SESSION_KEY]
    session.save()


def _user_deleted(user: User, session_key: str) -> None:
    User.objects.filter(pk=user.pk).delete()


def _out_of_the_agent_group(user: User, session_key: str) -> None:
    user.groups.remove(Group.objects.get(name=roles.AGENT_GROUP))


# The session ends; the person is still an agent, so the router still offers them calls.
SESSION_ENDINGS: dict[str, Callable[[User, str], None]] = {
    "logged out elsewhere": _logged_out_elsewhere,
    "expired": _expired,
    "password changed": _password_changed,
    "now another user's": _now_another_users,
    "backend no longer configured": _backend_no_longer_configured,
    "no session hash": _hash_missing,
}
# The person is no longer an agent: the router offers them nothing either
# (tests/privacy/test_roles_rechecked.py).
ENDINGS: dict[str, Callable[[User, str], None]] = {
    **SESSION_ENDINGS,
    "deactivated": _deactivated,
    "out of the agent group": _out_of_the_agent_group,
}
AGENT = roles.AGENT_GROUP


@pytest.mark.django_db
def test_the_check_reads_the_session_and_the_user_in_one_statement(make_agent):
    dana = make_agent("dana")
    session_key = _session_key(dana.user)
    with CaptureQueriesContext(connection) as queries:
        assert roles.still_signed_in(dana.user, session_key, role=AGENT)
    assert len(queries) == 1, [query["sql"] for query in queries]


@pytest.mark.django_db
@pytest.mark.parametrize("ending", [*ENDINGS, "user deleted"])
def test_every_ending_gives_the_answer_django_would(make_agent, ending):
    dana = make_agent("dana")
    session_key = _session_key(dana.user)
    assert roles.still_signed_in(dana.user, session_key, role=AGENT)
    {**ENDINGS, "user deleted": _user_deleted}[ending](dana.user, session_key)
    assert not roles.still_signed_in(dana.user, session_key, role=AGENT)
    # Django's own reading agrees (it may flush the session, so it is asked last).
    assert not roles._still_signed_in_as_get_user_reads_it(dana.user, session_key, role=AGENT)


@pytest.mark.django_db
def test_a_session_signed_under_a_retired_secret_key_is_still_signed_in(make_agent, settings):
    dana = make_agent("dana")
    session_key = _session_key(dana.user)
    settings.SECRET_KEY_FALLBACKS = [settings.SECRET_KEY]
    settings.SECRET_KEY = "a-new-secret-key-" + "x" * 40
    assert roles.still_signed_in(dana.user, session_key, role=AGENT)
    # Read only: the browser keeps its session (its next request gives it a new key).
    assert Session.objects.filter(session_key=session_key).exists()
    settings.SECRET_KEY_FALLBACKS = []
    assert not roles.still_signed_in(dana.user, session_key, role=AGENT)


@pytest.mark.django_db
def test_another_session_engine_is_read_the_general_way(make_agent, settings):
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.cache"
    dana = make_agent("dana")
    session_key = _session_key(dana.user)
    assert roles.still_signed_in(dana.user, session_key, role=AGENT)
    _password_changed(dana.user, session_key)
    assert not roles.still_signed_in(dana.user, session_key, role=AGENT)


@pytest.mark.django_db
def test_no_session_or_no_user_is_not_signed_in(make_agent):
    dana = make_agent("dana")
    session_key = _session_key(dana.user)
    assert not roles.still_signed_in(dana.user, None, role=AGENT)
    assert not roles.still_signed_in(None, session_key, role=AGENT)
    assert not roles.still_signed_in(dana.user, "not-a-session-key", role=AGENT)


def _socket_scenario(queue, headers, ending: Callable[[], None] | None):
    async def scenario():
        socket = WebsocketCommunicator(application, "/ws/agent/", headers=headers)
        connected, _ = await socket.connect()
        assert connected
        assert (await socket.receive_json_from(timeout=5))["type"] == "state"
        if ending is not None:
            await database_sync_to_async(ending)()
        offer = await database_sync_to_async(_ring)(queue)
        output = await socket.receive_output(timeout=10)
        await socket.disconnect()
        return offer, output

    return async_to_sync(scenario)()


@pytest.mark.django_db(transaction=True)
@pytest.mark.timeout(60)
def test_a_socket_whose_session_lives_on_is_sent_the_offer(make_agent, queue):
    dana = make_agent("dana", status="available")
    offer, output = _socket_scenario(queue, _headers(_session_key(dana.user)), None)
    assert output["type"] == "websocket.send", output
    message = json.loads(output["text"])
    assert (message["type"], message["offer_id"]) == ("offer", offer.id)


@pytest.mark.django_db(transaction=True)
@pytest.mark.timeout(60)
@pytest.mark.parametrize("ending", list(SESSION_ENDINGS))
def test_a_socket_whose_session_ended_is_closed_instead_of_sent_the_offer(
    make_agent, queue, ending
):
    dana = make_agent("dana", status="available")
    session_key = _session_key(dana.user)
    offer, output = _socket_scenario(
        queue, _headers(session_key), lambda: SESSION_ENDINGS[ending](dana.user, session_key)
    )
    assert offer.agent_id == dana.id
    assert output == {"type": "websocket.close", "code": 4403}


# The socket's own check reads on its event loop, with no hand-off to a thread.


def _on_loop(coroutine_function):
    """Run on an event loop of its own, as a socket's check runs on the server's."""
    return async_to_sync(coroutine_function)()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("ending", [*ENDINGS, "user deleted"])
def test_the_check_on_the_event_loop_gives_the_same_answers(make_agent, ending):
    dana = make_agent("dana")
    session_key = _session_key(dana.user)

    async def check() -> bool:
        return await roles.still_signed_in_on_loop(dana.user, session_key, role=AGENT)

    assert _on_loop(check)
    {**ENDINGS, "user deleted": _user_deleted}[ending](dana.user, session_key)
    assert not _on_loop(check)
    assert not roles.still_signed_in(dana.user, session_key, role=AGENT)


@pytest.mark.django_db(transaction=True)
def test_the_check_on_the_event_loop_hands_nothing_to_a_thread(make_agent, monkeypatch):
    dana = make_agent("dana")
    session_key = _session_key(dana.user)

    def no_thread(*args, **kwargs):
        raise AssertionError("handed to a thread")

    monkeypatch.setattr(SyncToAsync, "__call__", no_thread)

    async def check() -> bool:
        return await roles.still_signed_in_on_loop(dana.user, session_key, role=AGENT)

    assert _on_loop(check)


@pytest.mark.django_db(transaction=True)
def test_the_loop_connection_holds_no_transaction_and_is_replaced_when_the_server_drops_it(
    make_agent,
):
    dana = make_agent("dana")
    session_key = _session_key(dana.user)

    async def backend() -> int:
        (pid,) = await on_loop.fetchone("SELECT pg_backend_pid()", [])
        return pid

    async def scenario() -> tuple[bool, str, bool]:
        assert await roles.still_signed_in_on_loop(dana.user, session_key, role=AGENT)
        first = await backend()
        state = await database_sync_to_async(_backend_state)(first)
        await database_sync_to_async(_terminate)(first)
        after_drop = await roles.still_signed_in_on_loop(dana.user, session_key, role=AGENT)
        return after_drop, state, (await backend()) != first

    after_drop, state, replaced = _on_loop(scenario)

    # Autocommit: an idle connection, not one "idle in transaction" holding a snapshot.
    assert state == "idle"
    assert after_drop and replaced


def _backend_state(pid: int) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT state FROM pg_stat_activity WHERE pid = %s", [pid])
        return cursor.fetchone()[0]


def _terminate(pid: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", [pid])


@pytest.mark.django_db(transaction=True)
@pytest.mark.timeout(60)
def test_the_agent_socket_checks_its_session_on_the_event_loop(make_agent, queue, monkeypatch):
    dana = make_agent("dana", status="available")

    def in_a_thread(*args, **kwargs):
        raise AssertionError("the check was handed to a thread")

    monkeypatch.setattr(roles, "still_signed_in", in_a_thread)
    offer, output = _socket_scenario(queue, _headers(_session_key(dana.user)), None)
    assert json.loads(output["text"])["offer_id"] == offer.id


@pytest.mark.django_db
def test_the_check_reads_the_role_asked_for_and_staff_are_supervisors_not_agents(make_agent):
    dana = make_agent("dana")
    admin = User.objects.create_user("admin", is_staff=True)
    dana_key, admin_key = _session_key(dana.user), _session_key(admin)

    assert roles.still_signed_in(dana.user, dana_key, role=AGENT)
    assert not roles.still_signed_in(dana.user, dana_key, role=roles.SUPERVISOR_GROUP)
    assert roles.still_signed_in(admin, admin_key, role=roles.SUPERVISOR_GROUP)
    assert not roles.still_signed_in(admin, admin_key, role=AGENT)
