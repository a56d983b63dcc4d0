"""Celery tasks of the telephony integration (registered through CELERY_IMPORTS)."""

from __future__ import annotations

import json
import logging

import httpx
from celery import shared_task
from django.conf import settings
from django.utils import timezone

from infrastructure import dispatch
from routing.models import Call, RoutingDecision
from routing.states import FINAL_STATES
from telephony.models import ConnectAttempt, TwilioCall
from telephony.selectors import connect_backoff_seconds, connect_pushes_lost
from telephony.signing import sign

logger = logging.getLogger(__name__)

PUSH_CALL_CONNECT = "telephony.push_call_connect"
RESEND_LOST_CONNECTS = "telephony.resend_lost_connects"
# For a call that came in through Twilio the push is a REST update of the live call
# (telephony/twilio_tasks.py).
TWILIO_DIAL_AGENT = "telephony.twilio_dial_agent"


@shared_task(name=PUSH_CALL_CONNECT, bind=True, max_retries=None, ignore_result=True)
def push_call_connect(self, call_pk: int, decision_pk: int | None) -> None:
    """POST the signed `call.connect` instruction until a 2xx, or until the call ends."""
    url = settings.TELEPHONY_CONTROL_URL
    call = Call.objects.select_related("agent").filter(pk=call_pk).first()
    if not url or call is None or call.state in FINAL_STATES:
        return
    decision = None
    if decision_pk is not None:
        decision = (
            RoutingDecision.objects.select_related("agent")
            .filter(pk=decision_pk, call=call)
            .first()
        )
    agent = decision.agent if decision is not None else call.agent
    if agent is None:
        return
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
        logger.info("call %r: call.connect to %s delivered", call.telephony_call_id, agent)
        return
    countdown = connect_backoff_seconds(attempt)
    logger.warning(
        "call %r: call.connect not delivered (attempt %d: %s); again in %g s",
        call.telephony_call_id,
        attempt,
        status_code or error,
        countdown,
    )
    raise self.retry(countdown=countdown)


@shared_task(name=RESEND_LOST_CONNECTS, ignore_result=True)
def resend_lost_connects() -> None:
    """Sent by beat while a call waits to be connected to the agent who took it: push again
    each `call.connect` that was lost (the broker was away, a hook before it failed, a worker
    died mid-retry); for a Twilio call, the REST update."""
    if not settings.TELEPHONY_CONTROL_URL and not settings.TWILIO_ACCOUNT_SID:
        return
    lost = connect_pushes_lost(now=timezone.now())
    through_twilio = set(
        TwilioCall.objects.filter(call_id__in=[call_pk for call_pk, _ in lost]).values_list(
            "call_id", flat=True
        )
    )
    for call_pk, decision_pk in lost:
        if call_pk in through_twilio:
            logger.warning("call pk %s: Twilio REST update was lost; sending it again", call_pk)
            dispatch.publish(TWILIO_DIAL_AGENT, call_pk, decision_pk)
        elif settings.TELEPHONY_CONTROL_URL:
            logger.warning("call pk %s: call.connect was lost; pushing it again", call_pk)
            dispatch.publish(PUSH_CALL_CONNECT, call_pk, decision_pk)
