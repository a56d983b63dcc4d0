"""Twilio's webhooks (docs/telephony.md, "Twilio"): form-encoded POSTs signed with
`X-Twilio-Signature`, answered with TwiML (or 204 for status callbacks).

Each view parses Twilio's fields and calls telephony.twilio.calls; `twilio_webhook` checks,
once for all of them, that Twilio is configured (404), that the signature is Twilio's over the
URL Twilio requested and that the request is the configured account's (403), and answers a
missing or malformed field with 400 naming it.

Twilio's contract is never a 500: while PostgreSQL (or Redis) cannot be reached, a request
about what the caller hears is answered TwiML that keeps them on the line and asks again
(`hold_then_call_in_again`, or the wait loop's round), and a status callback a 503 with
Retry-After.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from twilio.twiml.voice_response import VoiceResponse

from infrastructure.api_errors import RETRY_AFTER_SECONDS, UNREACHABLE
from infrastructure.log_fields import call_fields
from routing.models import Call
from telephony.twilio import calls as twilio_calls
from telephony.twilio import choice as twilio_choice
from telephony.twilio import recordings as twilio_recordings
from telephony.twilio import voice as twilio_voice
from telephony.twilio.voice import CALL_SID, BadField, form_payload, optional, required

logger = logging.getLogger(__name__)


def _try_again_later(request: HttpRequest) -> HttpResponse:
    return JsonResponse(
        {"detail": "A service Rapport needs cannot be reached just now: try again shortly."},
        status=503,
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


def _hold_then_call_in_again(request: HttpRequest) -> HttpResponse:
    base_url = twilio_voice.public_base_url(request)
    return _twiml(twilio_voice.hold_then_call_in_again(base_url=base_url))


def twilio_webhook(
    *, while_unreachable: Callable[[HttpRequest], HttpResponse] = _try_again_later
) -> Callable[[Callable[[HttpRequest], HttpResponse]], Callable[[HttpRequest], HttpResponse]]:
    """A Twilio webhook view, checked (see the module); `while_unreachable` answers it while
    PostgreSQL or Redis cannot be reached."""

    def decorate(view: Callable[[HttpRequest], HttpResponse]):
        @csrf_exempt
        @require_POST
        @functools.wraps(view)
        def checked(request: HttpRequest) -> HttpResponse:
            if not twilio_voice.is_configured():
                return JsonResponse({"detail": "Twilio is not configured."}, status=404)
            if not twilio_voice.signature_is_valid(request):
                # Unsigned: its CallSid is anyone's to write, so not a field of the line.
                logger.warning("twilio request to %s refused: bad signature", request.path)
                return JsonResponse(
                    {"detail": "X-Twilio-Signature is missing or does not match this request."},
                    status=403,
                )
            if request.POST.get("AccountSid", "") != settings.TWILIO_ACCOUNT_SID:
                logger.warning(
                    "twilio request to %s refused: another account",
                    request.path,
                    extra=call_fields(request.POST.get("CallSid")),
                )
                return JsonResponse(
                    {"detail": "AccountSid is not this Rapport's account."}, status=403
                )
            try:
                return view(request)
            except BadField as bad:
                return JsonResponse(
                    {"detail": f"Bad field {bad.field}.", "errors": {bad.field: [bad.message]}},
                    status=400,
                )
            except UNREACHABLE as unreachable:
                logger.warning(
                    "twilio request to %s answered to come back: %s: %s",
                    request.path,
                    type(unreachable).__name__,
                    unreachable,
                    extra=call_fields(request.POST.get("CallSid")),
                )
                return while_unreachable(request)

        return checked

    return decorate


def _hang_up_after_thanks(request: HttpRequest) -> HttpResponse:
    return _twiml(twilio_voice.message_recorded())


def _twiml(response: VoiceResponse) -> HttpResponse:
    return HttpResponse(str(response), content_type="text/xml; charset=utf-8")


def _call_sid(form, field: str = "CallSid") -> str:
    return required(form, field, pattern=CALL_SID)


@twilio_webhook(while_unreachable=_hold_then_call_in_again)
def voice(request: HttpRequest) -> HttpResponse:
    """The number's "A call comes in": the caller waits in the queue."""
    form = request.POST
    next_step = twilio_calls.call_rang(
        call_sid=_call_sid(form),
        account_sid=form["AccountSid"],
        from_number=required(form, "From"),
        to_number=required(form, "To"),
        base_url=twilio_voice.public_base_url(request),
        payload=form_payload(form),
    )
    return _twiml(twilio_voice.twiml(next_step))


@twilio_webhook()
def status(request: HttpRequest) -> HttpResponse:
    """The number's status callback: a final CallStatus ends the call."""
    form = request.POST
    call_sid = _call_sid(form)
    call_status = required(form, "CallStatus")
    occurred_at = twilio_voice.timestamp(form)
    if call_status in twilio_voice.FINAL_CALL_STATUSES:
        twilio_calls.call_ended(
            call_sid=call_sid,
            call_status=call_status,
            occurred_at=occurred_at,
            payload=form_payload(form),
        )
    return HttpResponse(status=204)


def _another_round_of_the_wait(request: HttpRequest) -> HttpResponse:
    return _twiml(twilio_voice.waiting(base_url=twilio_voice.public_base_url(request)))


@twilio_webhook(while_unreachable=_another_round_of_the_wait)
def wait(request: HttpRequest) -> HttpResponse:
    """The queue's wait loop: keep waiting, or leave the queue to be dialled to the agent, or
    to leave a message once nobody of the queue is online any more."""
    call_sid = _call_sid(request.POST)
    leaving = twilio_calls.why_waiting_caller_leaves(call_sid=call_sid)
    if leaving is not None:
        # To be dialled means the REST update went missing: worth a warning.
        level = logging.WARNING if leaving == twilio_calls.TO_BE_DIALLED else logging.INFO
        logger.log(
            level,
            "twilio call %r: leaves the queue %s",
            call_sid,
            leaving,
            extra=call_fields(call_sid),
        )
        return _twiml(twilio_voice.leave())
    return _twiml(
        twilio_choice.wait_round(call_sid=call_sid, base_url=twilio_voice.public_base_url(request))
    )


@twilio_webhook(while_unreachable=_another_round_of_the_wait)
def choice(request: HttpRequest) -> HttpResponse:
    """The wait loop's `<Gather>` action: the key the held caller pressed (1 keep waiting, 2 the
    next colleague, 3 a call back); none or another: the wait goes on."""
    form = request.POST
    call_sid = _call_sid(form)
    digits = optional(form, "Digits", max_length=32)
    return _twiml(
        twilio_choice.caller_pressed(
            call_sid=call_sid,
            digits=digits,
            base_url=twilio_voice.public_base_url(request),
            payload=form_payload(form),
        )
    )


@twilio_webhook(while_unreachable=_hold_then_call_in_again)
def enqueue_action(request: HttpRequest) -> HttpResponse:
    form = request.POST
    next_step = twilio_calls.caller_left_queue(
        call_sid=_call_sid(form),
        queue_result=twilio_voice.one_of(form, "QueueResult", twilio_voice.QUEUE_RESULTS),
    )
    return _twiml(twilio_voice.twiml(next_step))


@twilio_webhook(while_unreachable=_hold_then_call_in_again)
def dial_action(request: HttpRequest) -> HttpResponse:
    form = request.POST
    decision = request.GET.get("decision", "")
    if not decision.isdigit() or len(decision) > 18:
        raise BadField("decision", "The dial action URL names the decision Rapport dialled.")
    dial_seconds = optional(form, "DialCallDuration") or "0"
    if not dial_seconds.isdigit():
        raise BadField("DialCallDuration", "Expected whole seconds.")
    next_step = twilio_calls.dial_ended(
        call_sid=_call_sid(form),
        decision_pk=int(decision),
        dial_status=twilio_voice.one_of(
            form, "DialCallStatus", twilio_voice.DIAL_CONNECTED | twilio_voice.DIAL_MISSED
        ),
        dial_call_sid=optional(form, "DialCallSid"),
        dial_seconds=int(dial_seconds),
        payload=form_payload(form),
    )
    return _twiml(twilio_voice.twiml(next_step))


@twilio_webhook()
def agent_status(request: HttpRequest) -> HttpResponse:
    """An agent leg's status callback: answered means the agent has the caller."""
    form = request.POST
    agent_leg_sid = _call_sid(form)
    call_sid = _call_sid(form, "ParentCallSid")
    call_status = required(form, "CallStatus")
    occurred_at = twilio_voice.timestamp(form)
    # Rapport's own dials name the agent in the URL; a transfer's leg is known by its `To`.
    agent_identity = request.GET.get("agent", "").strip() or required(form, "To", max_length=128)
    if call_status == twilio_voice.ANSWERED_CALL_STATUS:
        twilio_calls.agent_leg_answered(
            call_sid=call_sid,
            agent_leg_sid=agent_leg_sid,
            agent_identity=agent_identity[:64],
            occurred_at=occurred_at or twilio_voice.whole_second(timezone.now()),
            payload=form_payload(form),
        )
    return HttpResponse(status=204)


@twilio_webhook(while_unreachable=_hang_up_after_thanks)
def recorded(request: HttpRequest) -> HttpResponse:
    """The `<Record>`'s action, once the caller's message is over: thanks, and hang up (what
    the message means comes with its status callback)."""
    _call_sid(request.POST)
    return _twiml(twilio_voice.message_recorded())


@twilio_webhook()
def recording(request: HttpRequest) -> HttpResponse:
    """The `<Record>`'s recording status callback: a completed message is kept and offered as
    a call back (telephony.twilio.recordings). 204 once kept, or when there was nothing to
    keep; 404 naming CallSid for a call Rapport does not know (nothing is kept)."""
    form = request.POST
    call_sid = _call_sid(form)
    duration = required(form, "RecordingDuration", max_length=6)
    if not duration.isdigit():
        raise BadField("RecordingDuration", "Expected whole seconds.")
    try:
        twilio_recordings.recording_completed(
            call_sid=call_sid,
            sid=required(form, "RecordingSid", pattern=twilio_voice.RECORDING_SID),
            url=_recording_url(form),
            duration_seconds=int(duration),
            status=twilio_voice.one_of(form, "RecordingStatus", twilio_voice.RECORDING_STATUSES),
        )
    except Call.DoesNotExist:
        return JsonResponse(
            {"detail": "No call with this CallSid.", "errors": {"CallSid": ["Unknown call."]}},
            status=404,
        )
    return HttpResponse(status=204)


def _recording_url(form) -> str:
    """Where Twilio keeps the recording: on its REST API, for this account, never elsewhere
    (Rapport fetches it with the account's credentials)."""
    value = required(form, "RecordingUrl", max_length=300)
    expected = f"/2010-04-01/Accounts/{settings.TWILIO_ACCOUNT_SID}/Recordings/"
    if expected not in value or not value.startswith("https://"):
        raise BadField("RecordingUrl", "Expected this account's recording on Twilio's API.")
    return value
