"""What the telephony system may ask of Rapport about a call."""

from __future__ import annotations

from typing import Any

from routing.models import Call, RoutingDecision
from routing.states import OfferState


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
    agent = call.agent or (accepted.agent if accepted is not None else None)
    return {
        "call_id": call.telephony_call_id,
        "state": call.state,
        "queue": call.queue.slug if call.queue is not None else None,
        "agent": agent.telephony_identity if agent is not None else None,
        "decision_id": accepted.pk if accepted is not None else None,
    }
