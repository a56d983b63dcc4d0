"""The signed instructions pushed to the telephony system's control URL (`TELEPHONY_CONTROL_URL`):
`call.connect` once an agent took a call, and what the console asks for on a connected call
(`call.transfer`, `call.hangup`, `call.hold`, `call.resume`: telephony.instructions). One way
to push them all (`push`); every attempt is a `ConnectAttempt`."""

from __future__ import annotations

import json
import logging

import httpx
from django.conf import settings

from infrastructure.log_fields import call_fields
from routing.models import Call, DecisionReason, RoutingDecision
from routing.states import FINAL_STATES, WAITING_STATES, OfferState
from telephony.connect import connect_backoff_seconds
from telephony.instructions import CONNECT, TRANSFER
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
    return push(
        call,
        {
            "type": CONNECT,
            "call_id": call.telephony_call_id,
            "agent": agent.telephony_identity,
            "decision_id": decision_pk,
        },
        decision=decision,
    )


def push_call_instruction(
    *, call_pk: int, instruction: str, decision_pk: int | None
) -> float | None:
    """An instruction the console asked for (telephony.instructions), pushed like `call.connect`:
    None when it was delivered or is no longer wanted (the call ended; a transfer already done
    or no longer accepted), else the seconds to wait before the next try."""
    call = Call.objects.select_related("agent").filter(pk=call_pk).first()
    if not settings.TELEPHONY_CONTROL_URL or call is None or call.state in FINAL_STATES:
        return None
    decision = None
    if instruction == TRANSFER:
        decision = (
            RoutingDecision.objects.select_related("agent", "offer__handoff_from")
            .filter(pk=decision_pk, call=call, offer__state=OfferState.ACCEPTED)
            .first()
        )
        if decision is None or decision.agent is None or call.agent_id == decision.agent_id:
            return None
        handed_over_by = decision.offer.handoff_from
        body = {
            "type": TRANSFER,
            "call_id": call.telephony_call_id,
            "agent": decision.agent.telephony_identity,
            "from_agent": handed_over_by.telephony_identity if handed_over_by else None,
            "decision_id": decision.pk,
        }
    else:
        if call.agent is None:
            return None
        body = {
            "type": instruction,
            "call_id": call.telephony_call_id,
            "agent": call.agent.telephony_identity,
        }
    return push(call, body, decision=decision)


def post_signed(instruction: dict) -> tuple[int | None, str]:
    """POST one instruction, signed, to `TELEPHONY_CONTROL_URL`: the status code the telephony
    system answered (None if none), or what went wrong on the way."""
    body = json.dumps(instruction)
    headers = {"content-type": "application/json", **sign(body=body)}
    try:
        response = httpx.post(
            settings.TELEPHONY_CONTROL_URL,
            content=body,
            headers=headers,
            timeout=settings.TELEPHONY_CONNECT_TIMEOUT_SECONDS,
        )
    except httpx.HTTPError as failed:
        return None, f"{type(failed).__name__}: {failed}"[:300]
    return response.status_code, ""


def push(call: Call, instruction: dict, *, decision: RoutingDecision | None) -> float | None:
    """POST one signed instruction once, recorded as a `ConnectAttempt`: None when the telephony
    system took it (2xx), else the backoff before the next try."""
    kind = instruction["type"]
    agent_id = decision.agent_id if decision is not None else call.agent_id
    attempt = (
        ConnectAttempt.objects.filter(call=call, decision=decision, instruction=kind).count() + 1
    )
    status_code, error = post_signed(instruction)
    ConnectAttempt.objects.create(
        call=call,
        decision=decision,
        instruction=kind,
        attempt=attempt,
        status_code=status_code,
        error=error,
    )
    if status_code is not None and 200 <= status_code < 300:
        logger.info(
            "call %r: %s for %s delivered",
            call.telephony_call_id,
            kind,
            instruction["agent"],
            extra=call_fields(call.telephony_call_id, agent_id),
        )
        return None
    countdown = connect_backoff_seconds(attempt)
    logger.warning(
        "call %r: %s not delivered (attempt %d: %s); again in %g s",
        call.telephony_call_id,
        kind,
        attempt,
        status_code or error,
        countdown,
        extra=call_fields(call.telephony_call_id, agent_id),
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
