"""The caller's choice while held for their busy last agent, in Twilio's terms (docs/telephony.md,
"The caller's choice"): a round of the wait loop that asks with `<Gather numDigits="1">`, and its
action, which Twilio requests with the `Digits` pressed. What each key means is routing's
(routing.caller_choice); a call back is routing.callbacks.

Inside `<Enqueue>`'s wait, TwiML may only use Say, Play, Pause, Gather, Redirect, Leave and
Hangup: every answer here keeps to them. A call back leaves the queue (`<Leave/>`); the enqueue
action then hears the confirmation (`confirm_callback`) and hangs up.
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone
from twilio.twiml.voice_response import Gather, VoiceResponse

from routing import caller_choice
from routing.caller_choice import CALL_BACK, KEEP_WAITING, NEXT_COLLEAGUE, Question
from routing.models import Call
from routing.states import CallState
from telephony.applying import accept_event
from telephony.events import TelephonyEvent
from telephony.models import CallEventType
from telephony.twilio import voice

# How long Twilio waits for a key after the prompt, in seconds.
GATHER_TIMEOUT_SECONDS = 5

_OPTION_WORDS = {
    KEEP_WAITING: "To keep waiting for {them}, press 1.",
    NEXT_COLLEAGUE: "To speak to the next available colleague, press 2.",
    CALL_BACK: "To have {them} call you back, keeping your place, press 3.",
}


def prompt(question: Question) -> str:
    """What the caller hears: their agent's first name only when we know who is calling."""
    if question.agent_first_name:
        said, them = f"{question.agent_first_name} is", question.agent_first_name
    else:
        said, them = "The colleague you spoke to last time is", "them"
    options = " ".join(_OPTION_WORDS[key].format(them=them) for key in question.keys)
    return f"{said} on another call. {options}"


def asking(*, base_url: str, question: Question) -> VoiceResponse:
    """A round of the wait that asks; no key before the time-out: the wait goes on as before."""
    response = VoiceResponse()
    gather = Gather(
        num_digits=1,
        action=voice.url(base_url, "twilio-choice"),
        method="POST",
        timeout=GATHER_TIMEOUT_SECONDS,
    )
    gather.say(prompt(question))
    response.append(gather)
    response.pause(length=1)
    response.redirect(voice.url(base_url, "twilio-wait"), method="POST")
    return response


def wait_round(*, call_sid: str, base_url: str) -> VoiceResponse:
    """The wait loop's round for a caller still in the queue: the question, once, to a caller
    held for their busy last agent; otherwise the usual music or silence."""
    question = caller_choice.question_for_held_caller(telephony_call_id=call_sid)
    if question is None:
        return voice.waiting(base_url=base_url)
    return asking(base_url=base_url, question=question)


def _said(text: str, *, base_url: str) -> VoiceResponse:
    response = VoiceResponse()
    response.say(text)
    response.redirect(voice.url(base_url, "twilio-wait"), method="POST")
    return response


def caller_pressed(
    *, call_sid: str, digits: str, base_url: str, payload: dict[str, str]
) -> VoiceResponse:
    """The `<Gather>`'s action: what the key means, and what the caller hears next."""
    if digits == KEEP_WAITING and caller_choice.caller_chose_to_wait(telephony_call_id=call_sid):
        return _said("Thank you. Please hold; you are next for them.", base_url=base_url)
    if digits == NEXT_COLLEAGUE and caller_choice.caller_chose_next_colleague(
        telephony_call_id=call_sid
    ):
        return _said(
            "Thank you. The next available colleague will take your call.", base_url=base_url
        )
    if digits == CALL_BACK and _callback_requested(call_sid, payload=payload):
        return voice.leave()
    # No key, another key, or a choice the call can no longer make: as if nothing was pressed.
    return voice.waiting(base_url=base_url)


def _callback_requested(call_sid: str, *, payload: dict[str, str]) -> bool:
    """Key 3 from a caller who was asked: the call ends as a call back requested, through the
    path every call event takes (routing.callbacks opens the call back)."""
    asked = Call.objects.filter(
        telephony_call_id=call_sid, caller_asked_at__isnull=False, state=CallState.QUEUED
    )
    if not asked.exists():
        return False
    with transaction.atomic():
        receipt = accept_event(
            webhook_id=f"twilio:{call_sid}:callback_requested",
            event=TelephonyEvent(
                type=CallEventType.CALLBACK_REQUESTED,
                call_id=call_sid,
                occurred_at=voice.whole_second(timezone.now()),
                payload=payload,
            ),
        )
    return receipt.applied
