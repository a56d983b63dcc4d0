"""What the telephony system may ask of Rapport about a call."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.conf import settings

from routing.models import Call, RoutingDecision
from routing.selectors import calls_accepted_not_answered
from routing.states import OfferState
from telephony.models import ConnectAttempt, TwilioCall


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


def connect_backoff_seconds(attempt: int) -> float:
    """How long the push waits after its failed `attempt` before the next one."""
    base = settings.TELEPHONY_CONNECT_RETRY_SECONDS
    return min(base * 2 ** (attempt - 1), settings.TELEPHONY_CONNECT_RETRY_MAX_SECONDS)


def connect_pushes_lost(*, now: datetime) -> list[tuple[int, int]]:
    """`(call pk, decision pk)` of each accepted, unanswered call whose `call.connect` push is
    neither delivered nor still on its way: never tried, or its next try is overdue. A push is
    given its backoff and then its timeout and a moment more before it counts as lost."""
    patience = timedelta(seconds=settings.TELEPHONY_CONNECT_TIMEOUT_SECONDS + 2)
    awaiting = (
        RoutingDecision.objects.filter(
            call__in=calls_accepted_not_answered(accepted_before=now - patience),
            offer__state=OfferState.ACCEPTED,
        )
        # A Twilio caller dialled to the agent by the wait loop's fallback needs no push.
        .exclude(
            pk__in=TwilioCall.objects.filter(dialled_decision__isnull=False).values(
                "dialled_decision"
            )
        )
        .values_list("call_id", "id")
    )
    lost = []
    for call_pk, decision_pk in awaiting:
        latest = (
            ConnectAttempt.objects.filter(call_id=call_pk, decision_id=decision_pk)
            .order_by("-id")
            .values_list("attempt", "status_code", "sent_at")
            .first()
        )
        if latest is not None:
            attempt, status_code, sent_at = latest
            if status_code is not None and 200 <= status_code < 300:
                continue
            due = sent_at + timedelta(seconds=connect_backoff_seconds(attempt))
            if due + patience > now:
                continue
        lost.append((call_pk, decision_pk))
    return lost
