"""Who is who on the floor. The roles are the Django groups `agent` and `supervisor` (the API
contract); staff users administer and may do whatever a supervisor does."""

from __future__ import annotations

from typing import Any

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
