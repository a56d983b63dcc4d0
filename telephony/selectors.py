"""Reads of the telephony app: what a phone system may ask about a call, the agents it names,
and the recorded events still waiting for their worker."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.db.models import Case, Q, When

from routing.models import Agent, Call, RoutingDecision
from routing.states import WAITING_STATES, OfferState
from telephony.models import CallEvent, CallEventType


def call_instruction(*, telephony_call_id: str) -> dict[str, Any] | None:
    """What a pulling telephony system needs: the call's state and the agent to connect."""
    call = (
        Call.objects.select_related("queue", "agent")
        .filter(telephony_call_id=telephony_call_id)
        .first()
    )
    if call is None:
        return None
    accepted = (
        RoutingDecision.objects.select_related("agent")
        # Only an accepted offer names whom to connect: the router also records decisions that
        # name the last agent only to say they were unavailable or busy.
        .filter(call=call, agent__isnull=False, offer__state=OfferState.ACCEPTED)
        .order_by("-decided_at", "-id")
        .first()
    )
    if call.agent_id is None and call.state in WAITING_STATES:
        # Waiting again: an agent who accepted it earlier is connected to it no more.
        accepted = None
    agent = call.agent or (accepted.agent if accepted is not None else None)
    return {
        "call_id": call.telephony_call_id,
        "state": call.state,
        "queue": call.queue.slug if call.queue is not None else None,
        "agent": agent.telephony_identity if agent is not None else None,
        "decision_id": accepted.pk if accepted is not None else None,
    }


def agents_named(names: list[str]) -> list[Agent]:
    """The agents a phone system names (Generic CTI's `user`): by username, display name or
    telephony identity. One query."""
    names = [name.strip() for name in names if name and name.strip()]
    if not names:
        return []
    return list(
        Agent.objects.filter(
            Q(user__username__in=names)
            | Q(display_name__in=names)
            | Q(telephony_identity__in=names)
        )
        .select_related("user")
        .order_by("id")
    )


def agent_answering(number: str) -> Agent | None:
    """The agent a Generic CTI `answeringNumber` names: their telephony identity, else their
    username."""
    number = number.strip()
    if not number:
        return None
    return (
        Agent.objects.filter(Q(telephony_identity=number) | Q(user__username=number))
        .annotate(by_identity=Case(When(telephony_identity=number, then=0), default=1))
        .order_by("by_identity", "id")
        .first()
    )


def agents_rung_for(call: Call) -> list[int]:
    """The agents whose phones the telephony system said ring for `call` (its ringing events'
    named users, see telephony.generic_cti)."""
    named = CallEvent.objects.filter(call=call, type=CallEventType.RINGING).values_list(
        "payload__user", flat=True
    )
    names = [name for users in named if isinstance(users, list) for name in users]
    return [agent.id for agent in agents_named([n for n in names if isinstance(n, str)])]


# An event the intake recorded is applied by the task it published, within milliseconds;
# one still waiting after this long lost its task (the broker was away, a worker died).
EVENT_TASK_LOST_AFTER = timedelta(seconds=5)


def anything_to_apply(*, now: datetime) -> bool:
    """Whether a recorded event waits longer for its worker than it should (one query on a
    partial index: beat asks it every few seconds)."""
    return _waiting_too_long(now).exists()


def events_waiting_too_long(*, now: datetime, limit: int = 200) -> list[int]:
    """The recorded events whose task was lost, oldest first (by when they happened)."""
    return list(
        _waiting_too_long(now).order_by("occurred_at", "id").values_list("id", flat=True)[:limit]
    )


def _waiting_too_long(now: datetime):
    return CallEvent.objects.filter(
        fields_to_apply__isnull=False, received_at__lte=now - EVENT_TASK_LOST_AFTER
    )
