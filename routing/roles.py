"""Who is who on the floor. The roles are the Django groups `agent` and `supervisor` (the API
contract); staff users administer and may do whatever a supervisor does."""

from __future__ import annotations

from importlib import import_module
from types import SimpleNamespace
from typing import Any

from django.conf import settings
from django.contrib import auth

AGENT_GROUP = "agent"
SUPERVISOR_GROUP = "supervisor"


def is_supervisor(user: Any) -> bool:
    if user is None or not user.is_authenticated:
        return False
    return user.is_staff or user.groups.filter(name=SUPERVISOR_GROUP).exists()


def is_team_member(user: Any) -> bool:
    """An agent, a supervisor or staff: a person who serves customers, not a machine user."""
    if user is None or not user.is_authenticated:
        return False
    return user.is_staff or user.groups.filter(name__in=(AGENT_GROUP, SUPERVISOR_GROUP)).exists()


def still_signed_in(user: Any, session_key: str | None) -> bool:
    """Whether the login session a socket was opened with is still `user`'s: logging out, a
    password change or being deactivated ends it. Read afresh, not from the socket's copy."""
    if not session_key or user is None or not user.is_authenticated:
        return False
    session = import_module(settings.SESSION_ENGINE).SessionStore(session_key)
    current = auth.get_user(SimpleNamespace(session=session))
    return current.is_authenticated and current.pk == user.pk
