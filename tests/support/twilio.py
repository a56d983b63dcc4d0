"""Twilio's side of a call, played the way Twilio plays it: every request signed with the
`twilio` package's `RequestValidator` over the public URL it requests, TwiML read with
xml.etree and its URLs followed, and a local HTTP server standing in for api.twilio.com.

A pytest plugin (tests/conftest.py): `twilio_api`, `twilio_settings` and `twilio` serve every
test module."""

from __future__ import annotations

import itertools
import json
import os
import secrets
import threading
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from twilio.request_validator import RequestValidator

from tests.support.routing import celery_queue, solo_worker

SIGNATURE_HEADER = "X-Twilio-Signature"
ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = secrets.token_hex(16)
PUBLIC_BASE_URL = "https://rapport.example.com"
CUSTOMER_NUMBER = "+14155550123"
LOYALTY_NUMBER = "+18005550100"

_sids = itertools.count(1)
# A second of silence, 8 kHz 8-bit mono WAV: what the stand-in gives as any recording's audio.
RECORDING_AUDIO = (
    b"RIFF"
    + (36 + 8000).to_bytes(4, "little")
    + b"WAVEfmt "
    + (16).to_bytes(4, "little")
    + (1).to_bytes(2, "little")
    + (1).to_bytes(2, "little")
    + (8000).to_bytes(4, "little")
    + (8000).to_bytes(4, "little")
    + (1).to_bytes(2, "little")
    + (8).to_bytes(2, "little")
    + b"data"
    + (8000).to_bytes(4, "little")
    + b"\x80" * 8000
)


def new_call_sid() -> str:
    return f"CA{os.getpid():08x}{next(_sids):024x}"


def new_recording_sid() -> str:
    return f"RE{os.getpid():08x}{next(_sids):024x}"


def timestamp(moment) -> str:
    """Twilio's `Timestamp`: RFC 2822, whole seconds, UTC."""
    return format_datetime(moment.replace(microsecond=0), usegmt=True)


@pytest.fixture
def twilio_settings(settings, twilio_api):
    settings.TWILIO_ACCOUNT_SID = ACCOUNT_SID
    settings.TWILIO_AUTH_TOKEN = AUTH_TOKEN
    settings.TWILIO_PUBLIC_BASE_URL = PUBLIC_BASE_URL
    settings.TWILIO_API_BASE_URL = twilio_api.base_url
    settings.TWILIO_API_TIMEOUT_SECONDS = 2.0
    settings.TELEPHONY_CONTROL_URL = ""
    twilio_api.reset()
    return settings


# --- Twilio calling Rapport ----------------------------------------------------------------


@dataclass
class TwiML:
    """A TwiML answer, parsed."""

    status_code: int
    root: ET.Element | None

    def verbs(self) -> list[str]:
        return [element.tag for element in self.root] if self.root is not None else []

    def only(self, tag: str) -> ET.Element:
        assert self.verbs() == [tag], self.verbs()
        return self.root[0]


def twiml_of(text: str | bytes) -> ET.Element:
    root = ET.fromstring(text)
    assert root.tag == "Response"
    return root


class Twilio:
    """Twilio's requests to Rapport for one account, through Django's test client."""

    def __init__(self, client, *, auth_token: str = AUTH_TOKEN, account_sid: str = ACCOUNT_SID):
        self.client = client
        self.validator = RequestValidator(auth_token)
        self.account_sid = account_sid

    def request(
        self,
        url: str,
        params: dict[str, str],
        *,
        signature: str | None = None,
        host: str = "localhost:8000",
    ):
        """POST `params` form-encoded to the absolute `url`, signed as Twilio signs it."""
        params = {"AccountSid": self.account_sid, **params}
        if signature is None:
            signature = self.validator.compute_signature(url, params)
        parts = urlsplit(url)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        return self.client.post(
            path,
            params,
            HTTP_X_TWILIO_SIGNATURE=signature,
            # Behind the proxy: Django sees plain HTTP on an internal address.
            HTTP_HOST=host,
        )

    def twiml(self, url: str, params: dict[str, str]) -> TwiML:
        response = self.request(url, params)
        assert response.status_code == 200, response.content
        assert response["content-type"].startswith("text/xml")
        return TwiML(response.status_code, twiml_of(response.content))

    def incoming_call(self, call_sid: str, *, from_number: str = CUSTOMER_NUMBER) -> TwiML:
        return self.twiml(
            f"{PUBLIC_BASE_URL}/api/telephony/twilio/voice/",
            {
                "CallSid": call_sid,
                "From": from_number,
                "To": LOYALTY_NUMBER,
                "CallStatus": "ringing",
                "Direction": "inbound",
                "ApiVersion": "2010-04-01",
            },
        )

    def wait_round(self, enqueue: ET.Element, call_sid: str) -> TwiML:
        """Twilio asks the `<Enqueue>`'s waitUrl what to play while the caller waits."""
        assert enqueue.get("waitUrlMethod") == "POST"
        return self.twiml(
            enqueue.get("waitUrl"),
            {"CallSid": call_sid, "QueuePosition": "1", "QueueTime": "3", "CurrentQueueSize": "1"},
        )

    def press(self, gather: ET.Element, call_sid: str, digits: str) -> TwiML:
        """The caller pressed `digits` while the `<Gather>` listened: Twilio requests its
        action with `Digits` (none pressed before the time-out: Twilio goes on instead)."""
        assert gather.get("method") == "POST"
        assert gather.get("numDigits") == "1"
        return self.twiml(
            gather.get("action"),
            {"CallSid": call_sid, "Digits": digits, "From": CUSTOMER_NUMBER, "To": LOYALTY_NUMBER},
        )

    def left_queue(self, enqueue: ET.Element, call_sid: str, result: str) -> TwiML:
        """The caller is out of the queue: Twilio requests the `<Enqueue>`'s action."""
        assert enqueue.get("method") == "POST"
        return self.twiml(
            enqueue.get("action"), {"CallSid": call_sid, "QueueResult": result, "QueueTime": "9"}
        )

    def agent_leg(self, noun: ET.Element, call_sid: str, leg_sid: str, status: str, at) -> int:
        """The status callback of the agent's leg, as the `<Dial>` noun asked for it."""
        assert noun.get("statusCallbackMethod") == "POST"
        assert noun.get("statusCallbackEvent") == "answered completed"
        response = self.request(
            noun.get("statusCallback"),
            {
                "CallSid": leg_sid,
                "ParentCallSid": call_sid,
                "CallStatus": status,
                "To": to_of(noun),
                "Direction": "outbound-dial",
                "Timestamp": timestamp(at),
            },
        )
        return response.status_code

    def dial_ended(
        self, dial: ET.Element, call_sid: str, status: str, leg_sid: str = "", seconds: int = 0
    ) -> TwiML:
        """The `<Dial>` finished: Twilio requests its action."""
        assert dial.get("method") == "POST"
        params = {"CallSid": call_sid, "DialCallStatus": status}
        if leg_sid:
            params.update(DialCallSid=leg_sid, DialCallDuration=str(seconds))
        return self.twiml(dial.get("action"), params)

    def record(
        self, record: ET.Element, call_sid: str, *, seconds: int, status: str = "completed"
    ) -> tuple[TwiML, int, str]:
        """The caller left a message of `seconds` after the beep, as Twilio follows `<Record>`:
        it requests the action with the recording's fields, then posts the stored recording to
        the recordingStatusCallback. Returns the action's TwiML, the callback's status code and
        the recording's sid."""
        assert record.get("method") == "POST"
        assert record.get("recordingStatusCallbackMethod") == "POST"
        assert record.get("recordingStatusCallbackEvent") == "completed"
        sid = new_recording_sid()
        recording = {
            "CallSid": call_sid,
            "RecordingSid": sid,
            "RecordingUrl": recording_url(sid),
            "RecordingDuration": str(seconds),
        }
        after = self.twiml(record.get("action"), {**recording, "Digits": "hangup"})
        code = self.recording_status(record, {**recording, "RecordingStatus": status})
        return after, code, sid

    def recording_status(self, record: ET.Element, params: dict[str, str]) -> int:
        return self.request(record.get("recordingStatusCallback"), params).status_code

    def call_status(self, call_sid: str, status: str, at=None) -> int:
        """The number's status callback."""
        params = {"CallSid": call_sid, "CallStatus": status, "CallDuration": "30"}
        if at is not None:
            params["Timestamp"] = timestamp(at)
        url = f"{PUBLIC_BASE_URL}/api/telephony/twilio/status/"
        return self.request(url, params).status_code


@pytest.fixture
def twilio(client) -> Twilio:
    return Twilio(client)


class LiveTwilio(Twilio):
    """Twilio's requests to a Rapport server of its own (tests/support/servers.py) over HTTP,
    signed over the URL requested: the server has no TWILIO_PUBLIC_BASE_URL, so the URLs in its
    TwiML are its own address."""

    def __init__(self, base_url: str):
        super().__init__(client=None)
        self.base_url = base_url

    def request(self, url: str, params: dict[str, str], **_):
        params = {"AccountSid": self.account_sid, **params}
        signature = self.validator.compute_signature(url, params)
        response = httpx.post(url, data=params, headers={SIGNATURE_HEADER: signature}, timeout=10)
        return _LiveResponse(response)

    def incoming_call(self, call_sid: str, *, from_number: str = CUSTOMER_NUMBER) -> TwiML:
        return self.twiml(
            f"{self.base_url}/api/telephony/twilio/voice/",
            {"CallSid": call_sid, "From": from_number, "To": LOYALTY_NUMBER},
        )

    def call_status(self, call_sid: str, status: str, at=None) -> int:
        params = {"CallSid": call_sid, "CallStatus": status}
        if at is not None:
            params["Timestamp"] = timestamp(at)
        return self.request(f"{self.base_url}/api/telephony/twilio/status/", params).status_code


class _LiveResponse:
    """An httpx response read like Django's test client's."""

    def __init__(self, response):
        self.status_code = response.status_code
        self.content = response.content
        self._headers = response.headers

    def __getitem__(self, name: str) -> str:
        return self._headers[name]


def recording_url(sid: str) -> str:
    """Where Twilio says it keeps a recording (without an extension: Rapport adds .wav)."""
    return f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT_SID}/Recordings/{sid}"


def to_of(noun: ET.Element) -> str:
    """What Twilio reports as the agent leg's `To`."""
    if noun.tag == "Client":
        return f"client:{noun.text}"
    return noun.text


# --- Rapport calling Twilio ----------------------------------------------------------------


@dataclass
class RestUpdate:
    path: str
    form: dict[str, list[str]]
    authorization: str
    sid: str = ""
    method: str = "POST"

    @property
    def twiml(self) -> ET.Element:
        return twiml_of(self.form["Twiml"][0])


@dataclass
class TwilioApi:
    """The stand-in for api.twilio.com: records each request, answers with the next scripted
    status (200 and a call resource once the script is used up)."""

    base_url: str = ""
    script: list[int] = field(default_factory=list)
    received: list[RestUpdate] = field(default_factory=list)

    def reset(self) -> None:
        self.script.clear()
        self.received.clear()


def serve_twilio_api() -> tuple[TwilioApi, ThreadingHTTPServer]:
    api = TwilioApi()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["content-length"])).decode()
            status = api.script.pop(0) if api.script else 200
            # Calls.json creates a call (a call back): Twilio names it; else the call updated.
            creating = self.path.endswith("/Calls.json")
            sid = new_call_sid() if creating else Path(self.path).stem
            api.received.append(
                RestUpdate(self.path, parse_qs(body), self.headers.get("authorization", ""), sid)
            )
            if creating and status == 200:
                status = 201
            if status in (200, 201):
                payload = {
                    "sid": sid,
                    "account_sid": ACCOUNT_SID,
                    "status": "queued" if creating else "in-progress",
                }
            else:
                payload = {"code": 20500, "message": "Internal Server Error", "status": status}
            content = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(content)))
            self.end_headers()
            self.wfile.write(content)

        def log_message(self, *args):
            pass

        def do_GET(self):
            """A recording's audio (`…/Recordings/RE….wav`)."""
            status = api.script.pop(0) if api.script else 200
            api.received.append(
                RestUpdate(self.path, {}, self.headers.get("authorization", ""), method="GET")
            )
            content = RECORDING_AUDIO if status == 200 else b"{}"
            self.send_response(status)
            self.send_header("content-type", "audio/x-wav" if status == 200 else "application/json")
            self.send_header("content-length", str(len(content)))
            self.end_headers()
            self.wfile.write(content)

        def do_DELETE(self):
            """A recording deleted (`…/Recordings/RE….json`): 204, as Twilio answers."""
            status = api.script.pop(0) if api.script else 204
            api.received.append(
                RestUpdate(self.path, {}, self.headers.get("authorization", ""), method="DELETE")
            )
            self.send_response(status)
            self.send_header("content-length", "0")
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    api.base_url = f"http://127.0.0.1:{server.server_port}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return api, server


@pytest.fixture(scope="session")
def twilio_api() -> Iterator[TwilioApi]:
    api, server = serve_twilio_api()
    yield api
    server.shutdown()


@contextmanager
def twilio_worker(twilio_api: TwilioApi, workdir: Path, database_url: str) -> Iterator[str]:
    """A real `celery worker` on the test database (`database_url`) with this account's
    settings, consuming a queue of its own that this test process publishes to."""
    queue = f"twilio-tests-{os.getpid()}"
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "CELERY_QUEUE": queue,
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "TWILIO_API_BASE_URL": twilio_api.base_url,
        "TWILIO_API_TIMEOUT_SECONDS": "2",
        "TELEPHONY_CONNECT_RETRY_SECONDS": "0.3",
        "TELEPHONY_CONTROL_URL": "",
        "LOG_LEVEL": "INFO",
    }
    with solo_worker(env, workdir), celery_queue(queue):
        yield queue
