"""The signed `call.connect` instruction, pushed to the telephony system's control URL
(`TELEPHONY_CONTROL_URL`) once an agent took a call; every attempt is a `ConnectAttempt`."""

from __future__ import annotations

import json
import logging

import httpx
from django.conf import settings

from infrastructure.log_fields import call_fields
from routing.models import Call, DecisionReason, RoutingDecision
from routing.states import FINAL_STATES, WAITING_STATES
from telephony.connect import connect_backoff_seconds
from telephony.models import ConnectAttempt
from telephony.signing import sign

logger = logging.getLogger(__name__)


def push_call_connect(*, call_pk: int, decision_pk: int | None) -> float | None:
    """POST the signed instruction once: None when it was delivered or is no longer wanted
    (the call ended, nobody to connect), else the seconds to wait before the next try."""
    url = settings.TELEPHONY_CONTROL_URL
    call = Call.objects.select_related("agent").filter(pk=call_pk).first()
    if not url or call is None or call.state in FINAL_STATES:
        return None
    decision = None
    if decision_pk is not None:
        decision = (
            RoutingDecision.objects.select_related("agent")
            .filter(pk=decision_pk, call=call)
            .first()
        )
    agent = decision.agent if decision is not None else call.agent
    if agent is None:
        return None
    if decision is not None and _taken_back(call, decision):
        return None
    attempt = ConnectAttempt.objects.filter(call=call, decision=decision).count() + 1
    body = json.dumps(
        {
            "type": "call.connect",
            "call_id": call.telephony_call_id,
            "agent": agent.telephony_identity,
            "decision_id": decision_pk,
        }
    )
    headers = {"content-type": "application/json", **sign(body=body)}
    status_code, error = None, ""
    try:
        response = httpx.post(
            url, content=body, headers=headers, timeout=settings.TELEPHONY_CONNECT_TIMEOUT_SECONDS
        )
        status_code = response.status_code
    except httpx.HTTPError as failed:
        error = f"{type(failed).__name__}: {failed}"[:300]
    ConnectAttempt.objects.create(
        call=call, decision=decision, attempt=attempt, status_code=status_code, error=error
    )
    if status_code is not None and 200 <= status_code < 300:
        logger.info(
            "call %r: call.connect to %s delivered",
            call.telephony_call_id,
            agent,
            extra=call_fields(call.telephony_call_id, agent.id),
        )
        return None
    countdown = connect_backoff_seconds(attempt)
    logger.warning(
        "call %r: call.connect not delivered (attempt %d: %s); again in %g s",
        call.telephony_call_id,
        attempt,
        status_code or error,
        countdown,
        extra=call_fields(call.telephony_call_id, agent.id),
    )
    return countdown


# Decisions that take a call back from the agent who accepted it: their phone did not take it,
# or the phone system connected them to another call as they accepted it (routing.offers).
TAKEN_BACK = (DecisionReason.OFFER_TIMED_OUT, DecisionReason.AGENT_ON_ANOTHER_CALL)


def _taken_back(call: Call, decision: RoutingDecision) -> bool:
    """Whether `call` went back to waiting after `decision`'s agent accepted it: no longer
    theirs to connect."""
    return (
        call.state in WAITING_STATES
        and RoutingDecision.objects.filter(
            call=call, pk__gt=decision.pk, agent_id=decision.agent_id, reason__in=TAKEN_BACK
        ).exists()
    )
