"""Twilio Programmable Voice in Twilio's terms (docs/telephony.md, "Twilio"): the signature,
the form fields, the TwiML Rapport answers and the REST update that bridges a caller.

All of it is the `twilio` package's: `RequestValidator` checks `X-Twilio-Signature`,
`VoiceResponse` writes every TwiML document, `Client` updates the live call. What each request
means for a call is decided in telephony.twilio.calls.

An agent's telephony identity says how Twilio reaches them:

    client:NAME            <Client>NAME</Client>     (a Twilio Voice SDK device)
    sip:... or sips:...    <Sip>sip:...</Sip>         (a desk phone or softphone on a SIP domain)
    +E.164 number          <Number>+1...</Number>     (any phone)
"""

from __future__ import annotations

import email.utils
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from urllib.parse import urlencode

import requests
from django.conf import settings
from django.http import HttpRequest
from django.urls import reverse
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.request_validator import RequestValidator
from twilio.rest import Client
from twilio.twiml.voice_response import Dial, VoiceResponse

SIGNATURE_HEADER = "X-Twilio-Signature"
TWILIO_API_HOST = "https://api.twilio.com"
CALL_SID = re.compile(r"CA[0-9a-fA-F]{32}")
E164_NUMBER = re.compile(r"\+[1-9][0-9]{6,14}")
# Twilio's CallStatus values that end a call, as the number's status callback reports them.
FINAL_CALL_STATUSES = frozenset({"completed", "busy", "failed", "no-answer", "canceled"})
# The agent's leg was answered (the only agent-leg status Rapport acts on).
ANSWERED_CALL_STATUS = "in-progress"
# <Dial>'s DialCallStatus: the agent talked to the caller, or their phone did not take the call.
DIAL_CONNECTED = frozenset({"completed", "answered"})
DIAL_MISSED = frozenset({"no-answer", "busy", "failed", "canceled"})
# The longest message a caller may leave, in seconds.
VOICEMAIL_MAX_SECONDS = 120
RECORDING_SID = re.compile(r"RE[0-9a-fA-F]{32}")
# <Record>'s RecordingStatus values: only a completed recording is a message.
RECORDING_STATUSES = frozenset({"in-progress", "completed", "absent", "failed"})
# <Enqueue>'s QueueResult values.
QUEUE_RESULTS = frozenset(
    {
        "bridged",
        "bridging-in-process",
        "queue-full",
        "error",
        "system-error",
        "redirected",
        "hangup",
        "leave",
    }
)


class BadField(Exception):
    """A form field Twilio sent is missing or malformed (answered 400, naming it)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


# --- requests from Twilio --------------------------------------------------------------------


def is_configured() -> bool:
    return bool(settings.TWILIO_ACCOUNT_SID)


def public_base_url(request: HttpRequest) -> str:
    """Where Twilio reaches Rapport: TWILIO_PUBLIC_BASE_URL, else the request's own scheme and
    host (which behind a proxy are right only when Django is told about the proxy)."""
    configured = settings.TWILIO_PUBLIC_BASE_URL.rstrip("/")
    return configured or f"{request.scheme}://{request.get_host()}"


def requested_url(request: HttpRequest) -> str:
    """The URL Twilio requested, as it signed it: path and query string included."""
    return public_base_url(request) + request.get_full_path()


def signature_is_valid(request: HttpRequest) -> bool:
    """Whether `X-Twilio-Signature` is Twilio's, by the account's auth token, over the requested
    URL and the POSTed form (Twilio's own rules, applied by the package: ports, repeats)."""
    signature = request.headers.get(SIGNATURE_HEADER, "")
    if not signature or not settings.TWILIO_AUTH_TOKEN:
        return False
    validator = RequestValidator(settings.TWILIO_AUTH_TOKEN)
    try:
        return validator.validate(requested_url(request), request.POST, signature)
    except ValueError:
        # A Host header whose port is no port (`:99999`): not a URL Twilio could have signed.
        return False


def required(form, field: str, *, pattern: re.Pattern | None = None, max_length: int = 64) -> str:
    value = form.get(field, "").strip()
    if not value:
        raise BadField(field, "This field is required.")
    if len(value) > max_length or "\x00" in value:
        raise BadField(field, f"At most {max_length} characters, no NUL.")
    if pattern is not None and not pattern.fullmatch(value):
        raise BadField(field, f"Not a valid {field}.")
    return value


def optional(form, field: str, *, max_length: int = 64) -> str:
    value = form.get(field, "").strip()
    if len(value) > max_length or "\x00" in value:
        raise BadField(field, f"At most {max_length} characters, no NUL.")
    return value


def one_of(form, field: str, choices: frozenset[str]) -> str:
    value = required(form, field)
    if value not in choices:
        raise BadField(field, f"Expected one of {', '.join(sorted(choices))}.")
    return value


def timestamp(form, field: str = "Timestamp") -> datetime | None:
    """Twilio's RFC 2822 `Timestamp` of a status callback, or None when it sent none."""
    value = optional(form, field)
    if not value:
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError) as malformed:
        raise BadField(field, "Expected an RFC 2822 date (Mon, 24 Nov 2026 02:10:00 +0000).") from (
            malformed
        )
    if parsed.tzinfo is None:
        raise BadField(field, "Give the offset (+0000).")
    return parsed.astimezone(UTC)


def whole_second(moment: datetime) -> datetime:
    """Twilio's timestamps are whole seconds: Rapport's own clock readings for a Twilio call are
    rounded down the same way, so an event that follows another never sorts before it."""
    return moment.replace(microsecond=0)


def form_payload(form) -> dict[str, str]:
    """The request's fields as the event's stored payload (one value per field; PostgreSQL
    keeps no NUL characters)."""
    return {name.replace("\x00", ""): form.get(name, "").replace("\x00", "") for name in form}


# --- TwiML Rapport answers ------------------------------------------------------------------


class Step(StrEnum):
    """What the caller's call does next."""

    ENQUEUE = "enqueue"
    DIAL = "dial"
    HANG_UP = "hang_up"
    # The caller asked for a call back and left the queue: they hear it confirmed, then hang up.
    CALLBACK_CONFIRMED = "callback_confirmed"
    # Nobody of the queue is online: the caller may leave a message (telephony.voicemails).
    VOICEMAIL = "voicemail"
    NOTHING = "nothing"


@dataclass(frozen=True)
class NextStep:
    step: Step
    base_url: str = ""
    queue_name: str = ""
    agent_identity: str = ""
    decision_pk: int | None = None
    # Before queueing the caller again after Twilio failed to queue them: no tight loop.
    pause_seconds: int = 0
    # Whom a message is for, as the caller hears it: their agent's first name, or "us".
    message_for: str = "us"


def url(base_url: str, name: str, **query: object) -> str:
    """An absolute URL on Rapport that Twilio is to request (TwiML sent by the REST API has no
    document URL to resolve a relative one against)."""
    absolute = base_url.rstrip("/") + reverse(name)
    return f"{absolute}?{urlencode(query)}" if query else absolute


def twiml(next_step: NextStep) -> VoiceResponse:
    if next_step.step == Step.ENQUEUE:
        return enqueue(
            base_url=next_step.base_url,
            queue_name=next_step.queue_name,
            pause_seconds=next_step.pause_seconds,
        )
    if next_step.step == Step.DIAL:
        dialled = dial(
            base_url=next_step.base_url,
            agent_identity=next_step.agent_identity,
            decision_pk=next_step.decision_pk,
        )
        if dialled is not None:
            return dialled
    if next_step.step == Step.CALLBACK_CONFIRMED:
        response = VoiceResponse()
        response.say(
            "Thank you. We'll call you back; you keep your place in the queue. After the tone,"
            f" leave a message for {next_step.message_for} if you like, or just hang up."
        )
        return record_message(response, base_url=next_step.base_url)
    if next_step.step == Step.VOICEMAIL:
        response = VoiceResponse()
        response.say(
            "Sorry, nobody can take your call just now. After the tone, leave a message and"
            " we'll call you back."
        )
        return record_message(response, base_url=next_step.base_url)
    if next_step.step == Step.HANG_UP:
        response = VoiceResponse()
        response.hangup()
        return response
    return VoiceResponse()


def enqueue(*, base_url: str, queue_name: str, pause_seconds: int = 0) -> VoiceResponse:
    response = VoiceResponse()
    if pause_seconds:
        response.pause(length=pause_seconds)
    response.enqueue(
        queue_name,
        action=url(base_url, "twilio-enqueue-action"),
        method="POST",
        wait_url=url(base_url, "twilio-wait"),
        wait_url_method="POST",
    )
    return response


def record_message(response: VoiceResponse, *, base_url: str) -> VoiceResponse:
    """`<Record>` the caller's message: once it is over Twilio requests the action (thanks and
    hang up), and posts the recording, once stored, to the status callback."""
    response.record(
        max_length=VOICEMAIL_MAX_SECONDS,
        play_beep=True,
        action=url(base_url, "twilio-recorded"),
        method="POST",
        recording_status_callback=url(base_url, "twilio-recording"),
        recording_status_callback_method="POST",
        recording_status_callback_event="completed",
    )
    # Twilio goes on here only when the caller said nothing at all.
    response.hangup()
    return response


def message_recorded() -> VoiceResponse:
    response = VoiceResponse()
    response.say("Thank you for your message. Goodbye.")
    response.hangup()
    return response


def waiting(*, base_url: str) -> VoiceResponse:
    """One round of the wait loop: music or silence, then Twilio asks again, so an instruction
    to leave the queue is at most TWILIO_WAIT_SECONDS away."""
    response = VoiceResponse()
    if settings.TWILIO_HOLD_MUSIC_URL:
        response.play(settings.TWILIO_HOLD_MUSIC_URL)
    response.pause(length=settings.TWILIO_WAIT_SECONDS)
    response.redirect(url(base_url, "twilio-wait"), method="POST")
    return response


def hold_then_call_in_again(*, base_url: str) -> VoiceResponse:
    """While Rapport cannot reach its database: the caller hears a round of the wait (music or
    silence), then Twilio requests the number's "A call comes in" again, with the call's own
    parameters, and so on until the call can be recorded and queued (or dialled to the agent
    who accepted it, or hung up once it is over): the caller stays on the line meanwhile."""
    response = VoiceResponse()
    if settings.TWILIO_HOLD_MUSIC_URL:
        response.play(settings.TWILIO_HOLD_MUSIC_URL)
    response.pause(length=settings.TWILIO_WAIT_SECONDS)
    response.redirect(url(base_url, "twilio-voice"), method="POST")
    return response


def leave() -> VoiceResponse:
    response = VoiceResponse()
    response.leave()
    return response


def is_dialable(agent_identity: str) -> bool:
    return _noun(agent_identity) is not None


def _noun(agent_identity: str) -> str | None:
    if agent_identity.startswith("client:") and len(agent_identity) > len("client:"):
        return "client"
    if agent_identity.startswith(("sip:", "sips:")):
        return "sip"
    if E164_NUMBER.fullmatch(agent_identity):
        return "number"
    return None


def dial(*, base_url: str, agent_identity: str, decision_pk: int | None) -> VoiceResponse | None:
    """`<Dial>` of the agent, with Rapport's dial action and the agent leg's status callbacks;
    None when the identity names nothing Twilio can dial."""
    noun = _noun(agent_identity)
    if noun is None:
        return None
    response = VoiceResponse()
    dialling = Dial(
        action=url(base_url, "twilio-dial-action", decision=decision_pk or ""),
        method="POST",
        timeout=settings.TWILIO_AGENT_RING_SECONDS,
    )
    leg_callbacks = {
        "status_callback": url(base_url, "twilio-agent-status", agent=agent_identity),
        "status_callback_event": "answered completed",
        "status_callback_method": "POST",
    }
    if noun == "client":
        dialling.client(agent_identity.removeprefix("client:"), **leg_callbacks)
    elif noun == "sip":
        dialling.sip(agent_identity, **leg_callbacks)
    else:
        dialling.number(agent_identity, **leg_callbacks)
    response.append(dialling)
    return response


# --- Rapport's requests to Twilio ------------------------------------------------------------


class ApiBaseHttpClient(TwilioHttpClient):
    """The package's HTTP client, sending to TWILIO_API_BASE_URL instead of api.twilio.com: the
    way Twilio documents to route its client elsewhere (a custom HTTP client)."""

    def request(self, method: str, url: str, *args, **kwargs):
        base = settings.TWILIO_API_BASE_URL.rstrip("/")
        if url.startswith(TWILIO_API_HOST) and base != TWILIO_API_HOST:
            url = base + url[len(TWILIO_API_HOST) :]
        return super().request(method, url, *args, **kwargs)


def rest_client() -> Client:
    return Client(
        settings.TWILIO_ACCOUNT_SID,
        settings.TWILIO_AUTH_TOKEN,
        http_client=ApiBaseHttpClient(timeout=settings.TWILIO_API_TIMEOUT_SECONDS),
    )


def update_live_call(*, call_sid: str, response: VoiceResponse) -> tuple[int | None, str]:
    """Replace what the live call `call_sid` is doing with `response`: (HTTP status, error)."""
    try:
        rest_client().calls(call_sid).update(twiml=str(response))
    except TwilioRestException as refused:
        return refused.status, f"Twilio {refused.code}: {refused.msg}"[:300]
    except (TwilioException, requests.RequestException) as failed:
        return None, f"{type(failed).__name__}: {failed}"[:300]
    return 200, ""


def end_live_call(*, call_sid: str) -> tuple[int | None, str]:
    """Hang up the live call `call_sid` (every leg of it): (HTTP status, error)."""
    try:
        rest_client().calls(call_sid).update(status="completed")
    except TwilioRestException as refused:
        return refused.status, f"Twilio {refused.code}: {refused.msg}"[:300]
    except (TwilioException, requests.RequestException) as failed:
        return None, f"{type(failed).__name__}: {failed}"[:300]
    return 200, ""
