"""Placing a call back once an agent accepted it (docs/telephony.md, "Call backs"): through
Twilio, a REST `Calls.create` to the customer from the number they dialled, whose TwiML dials the
agent (the same `<Dial>` as a caller's bridge); through a phone system of our own format, a signed
`call.dial` pushed to TELEPHONY_CONTROL_URL like `call.connect`. Every try is a `ConnectAttempt`,
retried with the same backoff, and sent again by beat when lost (telephony.connect).

The placed call comes back with its own id: Twilio's CallSid becomes the try's call id here, so
its status callbacks and agent leg are the try's. A phone system of our own format reports the
call it placed under an id of its choosing with `metadata.callback_id`: those events are the
try's too (telephony.placed_calls).
"""

from __future__ import annotations

import logging

import requests
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from twilio.base.exceptions import TwilioException, TwilioRestException

from routing.models import Call, Callback, RoutingDecision
from routing.states import WAITING_STATES, OfferState
from telephony.connect import connect_backoff_seconds
from telephony.instructions import DIAL
from telephony.models import ConnectAttempt, TwilioCall, TwilioDialPath
from telephony.signed_events.connect_push import post_signed
from telephony.twilio import voice

logger = logging.getLogger(__name__)


def place_callback(*, call_pk: int, decision_pk: int | None) -> float | None:
    """Place the try `call_pk` for the agent who accepted it, once: None when done or no longer
    wanted, else the seconds to wait before trying again. The try stays locked while the phone
    system is asked, so a resend cannot place it twice."""
    with transaction.atomic():
        call = (
            Call.objects.select_for_update(of=("self",))
            .select_related("agent", "callback", "callback__queue")
            .filter(pk=call_pk, callback__isnull=False)
            .first()
        )
        if call is None or call.state not in WAITING_STATES or call.agent_id is None:
            return None
        decisions = RoutingDecision.objects.filter(
            call=call, agent_id=call.agent_id, offer__state=OfferState.ACCEPTED
        )
        if decision_pk is not None:
            decisions = decisions.filter(pk=decision_pk)
        decision = decisions.order_by("-id").first()
        if decision is None:
            return None
        tries = ConnectAttempt.objects.filter(call=call, decision=decision, instruction=DIAL)
        if tries.filter(status_code__range=(200, 299)).exists():
            return None
        twilio_call = TwilioCall.objects.filter(call_id=call.callback.requested_on_id).first()
        if twilio_call is not None and voice.is_configured():
            status_code, error = _create_twilio_call(call, decision, twilio_call)
        elif settings.TELEPHONY_CONTROL_URL:
            status_code, error = _push_call_dial(call)
        else:
            return None
        attempt = tries.count() + 1
        ConnectAttempt.objects.create(
            call=call,
            decision=decision,
            instruction=DIAL,
            attempt=attempt,
            status_code=status_code,
            error=error,
        )
        if status_code is not None and 200 <= status_code < 300:
            logger.info("call back %s: placed for %s", call.callback_id, call.agent)
            return None
    countdown = connect_backoff_seconds(attempt)
    logger.warning(
        "call back %s: not placed (attempt %d: %s); again in %g s",
        call.callback_id,
        attempt,
        error or status_code,
        countdown,
    )
    return countdown


def _from_number(callback: Callback) -> str:
    return callback.from_number or next(iter(callback.queue.numbers), "")


def _create_twilio_call(
    call: Call, decision: RoutingDecision, twilio_call: TwilioCall
) -> tuple[int | None, str]:
    base_url = twilio_call.public_base_url
    bridge = voice.dial(
        base_url=base_url,
        agent_identity=call.agent.telephony_identity,
        decision_pk=decision.pk,
    )
    if bridge is None:
        return None, f"{call.agent.telephony_identity!r} is not client:, sip: or +E.164"
    try:
        created = voice.rest_client().calls.create(
            to=call.callback.number,
            from_=_from_number(call.callback),
            twiml=str(bridge),
            status_callback=voice.url(base_url, "twilio-status"),
            status_callback_event=["completed"],
            status_callback_method="POST",
        )
    except TwilioRestException as refused:
        return refused.status, f"Twilio {refused.code}: {refused.msg}"[:300]
    except (TwilioException, requests.RequestException) as failed:
        return None, f"{type(failed).__name__}: {failed}"[:300]
    # From here on the try is the call Twilio placed: its callbacks name it by its CallSid.
    call.telephony_call_id = created.sid
    call.save(update_fields=["telephony_call_id"])
    TwilioCall.objects.create(
        call=call,
        account_sid=twilio_call.account_sid,
        public_base_url=base_url,
        dialled_decision=decision,
        dialled_via=TwilioDialPath.PLACED,
        dialled_at=timezone.now(),
    )
    return 201, ""


def call_dial_instruction(call: Call) -> dict[str, object]:
    callback = call.callback
    return {
        "type": "call.dial",
        # Optional, beyond the contract's fields: the id Rapport gives the try, which a phone
        # system may use as the `call_id` of the call it places (docs/telephony.md).
        "call_id": call.telephony_call_id,
        "callback_id": callback.pk,
        "to": callback.number,
        "from": _from_number(callback),
        "agent": call.agent.telephony_identity,
    }


def _push_call_dial(call: Call) -> tuple[int | None, str]:
    return post_signed(call_dial_instruction(call))
