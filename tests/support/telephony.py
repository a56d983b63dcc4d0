"""The telephony system's side of the tests: a webhook secret, signed events, and the path
production takes for them.

`phone_system` posts each event through the ASGI application, as uvicorn serves it (the body
limit, then the webhook's intake on a server's event loop, recording the event before its
202), and then does what the worker does: it takes each task the intake published off the
real broker and runs it (`telephony.apply_recorded_event`, which applies the event and routes
the call). The intake records over its own database connection, so these tests commit
(`transactional_db`).
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import os
import secrets
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler
from typing import Any

import httpx
import pytest
import redis
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections

from infrastructure import broadcast
from rapport.celery import app as celery_app
from telephony import tasks as telephony_tasks
from telephony.applying import APPLY_RECORDED_EVENT
from telephony.signing import sign, signed_request_content
from tests.support.routing import celery_queue

EVENTS_URL = "/api/telephony/events/"

_queues = itertools.count(1)


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


@pytest.fixture
def webhook_secret(settings) -> str:
    secret = new_secret()
    settings.TELEPHONY_WEBHOOK_SECRET = [secret]
    return secret


def event(type_: str, call_id: str, occurred_at: datetime | str | None = None, **fields) -> dict:
    when = occurred_at or datetime.now(tz=UTC)
    return {
        "type": type_,
        "call_id": call_id,
        "occurred_at": when if isinstance(when, str) else when.isoformat(),
        **fields,
    }


def ringing(call_id: str, occurred_at=None, **fields) -> dict:
    fields.setdefault("from", "+14155550123")
    fields.setdefault("to", "+18005550100")
    return event("call.ringing", call_id, occurred_at, **fields)


def signed_headers(body: str | bytes, webhook_id: str | None = None) -> dict[str, str]:
    """Standard Webhooks headers for `body`, signed with the configured secret."""
    return {"content-type": "application/json", **sign(body=body, msg_id=webhook_id)}


def as_test_client_headers(headers: dict[str, str]) -> dict[str, str]:
    """`headers` as Django's test client takes them (`HTTP_WEBHOOK_ID=...`)."""
    return {"HTTP_" + name.upper().replace("-", "_"): value for name, value in headers.items()}


def signed_pull_headers(path: str) -> dict[str, str]:
    """A pull (or route hint) signed over its method and path, for Django's test client."""
    return as_test_client_headers(sign(body=signed_request_content(method="GET", path=path)))


class _ServerLoop:
    """One event loop in a thread of its own for the life of the test run, as a server has: the
    intake's database connection and broker client belong to it."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, name="test-server", daemon=True).start()

    def run(self, coroutine, timeout: float = 30) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)


_server_loop: _ServerLoop | None = None


def server_loop() -> _ServerLoop:
    global _server_loop
    if _server_loop is None:
        _server_loop = _ServerLoop()
    return _server_loop


def request_application(
    method: str,
    path: str,
    content: str | bytes = b"",
    headers: dict[str, str] | None = None,
    *,
    from_address: str = "127.0.0.1",
) -> httpx.Response:
    """One request to the application as the server runs it (`rapport.asgi.http_application`),
    on the server's event loop; Django's views run in their own threads, so what they write is
    committed (`transactional_db`)."""
    from rapport.asgi import http_application

    async def send() -> httpx.Response:
        transport = httpx.ASGITransport(app=http_application(), client=(from_address, 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            return await client.request(method, path, content=content, headers=headers or {})

    # The request's thread outlives the test: it must not keep a connection to the test
    # database open (every thread's connection reads this same dictionary).
    database = connections[DEFAULT_DB_ALIAS].settings_dict
    kept_for = database["CONN_MAX_AGE"]
    database["CONN_MAX_AGE"] = 0
    try:
        return server_loop().run(send())
    finally:
        database["CONN_MAX_AGE"] = kept_for


class PhoneSystem:
    """Posts signed events the way a telephony system does, to the application as the server
    runs it, and lets a worker apply what was recorded before it returns."""

    def __init__(self) -> None:
        from rapport.asgi import http_application

        self.app = http_application()
        self.broker = redis.Redis.from_url(settings.REDIS_URL)

    def post(
        self,
        payload: Any,
        *,
        webhook_id: str | None = None,
        headers: dict | None = None,
        work: bool = True,
        from_address: str = "127.0.0.1",
    ) -> httpx.Response:
        """Sign `payload` (an event, or a body as text or bytes) and post it; then, unless told
        not to `work`, the worker applies whatever it recorded."""
        body = payload if isinstance(payload, str | bytes) else json.dumps(payload)
        headers = {**signed_headers(body, webhook_id), **(headers or {})}
        return self.send(body, headers, work=work, from_address=from_address)

    def send(
        self,
        body: str | bytes,
        headers: dict[str, str],
        *,
        work: bool = True,
        from_address: str = "127.0.0.1",
    ) -> httpx.Response:
        """Post `body` with exactly `headers`, from `from_address`; then the worker applies
        whatever was recorded."""
        content = body.encode() if isinstance(body, str) else body
        response = server_loop().run(self._post(content, headers, from_address))
        if work:
            self.work()
        return response

    async def _post(
        self, content: bytes, headers: dict[str, str], from_address: str
    ) -> httpx.Response:
        transport = httpx.ASGITransport(app=self.app, client=(from_address, 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            return await client.post(EVENTS_URL, content=content, headers=headers)

    def work(self) -> None:
        """Run, in the order they were published, the tasks that apply recorded events, as a
        worker takes them off the broker; any other task is left where it is. Returns once the
        screen messages they sent have gone out, so a test sees at once what a screen would."""
        queue = celery_app.conf.task_default_queue
        # LPUSH puts the newest first.
        for raw in reversed(self.broker.lrange(queue, 0, -1)):
            message = json.loads(raw)
            if message["headers"]["task"] != APPLY_RECORDED_EVENT:
                continue
            self.broker.lrem(queue, 1, raw)
            args, kwargs, _ = json.loads(base64.b64decode(message["body"]))
            telephony_tasks.apply_recorded_event.apply(args=args, kwargs=kwargs, throw=True)
        broadcast.flush()


@pytest.fixture
def phone_system(transactional_db, webhook_secret) -> Iterator[PhoneSystem]:
    """The telephony system posting signed events (see the module). Its tasks go to a broker
    queue of the test's own."""
    with celery_queue(f"phone-system-{os.getpid()}-{next(_queues)}") as queue:
        phone = PhoneSystem()
        yield phone
        phone.broker.delete(queue)


def post_event(phone: PhoneSystem, payload: Any, *, webhook_id: str | None = None, **headers):
    """`phone.post`, header names written as keyword arguments (content_length=...)."""
    return phone.post(
        payload,
        webhook_id=webhook_id,
        headers={name.replace("_", "-"): value for name, value in headers.items()},
    )


class TelephonyControl(BaseHTTPRequestHandler):
    """The telephony system's control URL (tests/system/conftest.py serves it: `control_url`).
    Answers each push with the next scripted status (200 once the script is used up)."""

    script: list[int] = []
    received: list[tuple[dict, bytes]] = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["content-length"]))
        type(self).received.append((dict(self.headers.items()), body))
        status = type(self).script.pop(0) if type(self).script else 200
        self.send_response(status)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


class PhoneSystemControl(BaseHTTPRequestHandler):
    """The phone system's control URL for the system tests that run many calls (soak,
    deployment): each instruction Rapport pushes, as it came, answered 200. A test empties
    `received` when it starts serving it."""

    received: list[dict] = []
    lock = threading.Lock()

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        with type(self).lock:
            type(self).received.append(body)
        self.send_response(200)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


# Where a test's call story starts: minutes ago, so every moment the story names is past (a
# moment ahead of Rapport's clock is refused).
STORY_STARTS = datetime.now(tz=UTC) - timedelta(minutes=5)
_story_webhook_ids = itertools.count(1)


def at(seconds: float) -> datetime:
    """The moment `seconds` into a test's call story."""
    return STORY_STARTS + timedelta(seconds=seconds)


def send(phone: PhoneSystem, *events: dict) -> None:
    """The phone system posts each event, signed, with a webhook id of its own; each is
    accepted."""
    for payload in events:
        response = phone.post(payload, webhook_id=f"msg_story_{next(_story_webhook_ids)}")
        assert response.status_code == 202, response.content
