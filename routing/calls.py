"""A call's own row, as the router changes it: the fields it writes, and the move of its state
(checked against routing.states)."""

from __future__ import annotations

from datetime import datetime

from routing.models import Call
from routing.states import check_call_move

ROUTER_CALL_FIELDS = [
    "state",
    "state_changed_at",
    "last_agent",
    "last_agent_wait_until",
    "queued_at",
    "agent",
]


def save_call(call: Call) -> None:
    call.save(update_fields=ROUTER_CALL_FIELDS)


def move_call(call: Call, target: str, *, now: datetime) -> None:
    check_call_move(call.state, target)
    call.state = target
    call.state_changed_at = now
