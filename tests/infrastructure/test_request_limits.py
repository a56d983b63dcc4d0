"""Every request body is capped before Django reads it (infrastructure.request_limits): a body
declared too large is refused before a byte is read, a chunked one is read only up to the cap,
and each gets a 413 with a JSON `detail`, never a 500."""

import asyncio
import json

import pytest
from asgiref.sync import async_to_sync
from django.conf import settings

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("webhook_secret")]


def _asgi_post(path: str, chunks, *, headers=()):
    """POST `chunks` to the ASGI application as a server would; what came back, and how many
    body bytes the application read."""
    from rapport.asgi import application

    async def scenario():
        pending = list(chunks)
        read = 0
        sent = []

        async def receive():
            nonlocal read
            if not pending:
                # A client that sent everything waits for the answer.
                await asyncio.Event().wait()
            chunk = pending.pop(0)
            read += len(chunk)
            return {"type": "http.request", "body": chunk, "more_body": bool(pending)}

        async def send(message):
            sent.append(message)

        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": [(b"host", b"localhost"), *headers],
            "client": ("10.9.9.9", 50000),
            "server": ("localhost", 80),
        }
        await application(scope, receive, send)
        return sent, read

    return async_to_sync(scenario)()


def _status_and_json(sent):
    start = next(message for message in sent if message["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], json.loads(body)


@pytest.mark.parametrize("path", ["/accounts/login/", "/api/telephony/events/", "/nowhere/"])
def test_a_body_declared_too_large_is_refused_before_a_byte_is_read(path):
    ten_mib = 10 * 1024 * 1024
    sent, read = _asgi_post(
        path, [b"x" * 65536] * 160, headers=[(b"content-length", str(ten_mib).encode())]
    )

    status, body = _status_and_json(sent)
    assert status == 413
    assert "detail" in body
    assert read == 0


@pytest.mark.parametrize("path", ["/accounts/login/", "/api/telephony/events/"])
def test_a_chunked_body_is_read_only_up_to_the_cap(path):
    chunk = b"x" * 65536
    sent, read = _asgi_post(path, [chunk] * 320)

    status, body = _status_and_json(sent)
    assert status == 413
    assert "detail" in body
    assert read <= settings.MAX_REQUEST_BODY_BYTES + len(chunk)


def test_a_body_under_the_cap_still_reaches_django():
    sent, _ = _asgi_post(
        "/api/telephony/events/",
        [b"{}"],
        headers=[(b"content-length", b"2"), (b"content-type", b"application/json")],
    )

    status, body = _status_and_json(sent)
    assert status == 401
    assert "signature" in body["detail"]
