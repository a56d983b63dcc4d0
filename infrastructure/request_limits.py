"""Every request body is capped before Django reads it.

Django's ASGI handler reads a whole body (into memory, then a temporary file) before any
middleware or view runs, so a view's own size check comes after the cost, for any URL and
before any login. This ASGI middleware answers 413 at once when the declared `Content-Length`
is over the cap, and stops reading a body without one (chunked) as soon as it passes the cap.
"""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings


class RequestBodyLimit:
    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = settings.MAX_REQUEST_BODY_BYTES
        if _declared_length(scope) > limit:
            await _refuse(send, limit)
            return
        received = 0
        refused = False
        response_started = False

        async def limited_receive() -> dict:
            nonlocal received, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    refused = True
                    if not response_started:
                        await _refuse(send, limit)
                    # The application stops reading and answers nothing more.
                    return {"type": "http.disconnect"}
            return message

        async def tracked_send(message: dict) -> None:
            nonlocal response_started
            if refused:
                return
            response_started = True
            await send(message)

        await self.app(scope, limited_receive, tracked_send)


def _declared_length(scope: dict) -> int:
    for name, value in scope.get("headers", ()):
        if name.lower() == b"content-length":
            try:
                return int(value)
            except ValueError:
                # The server refuses a malformed length itself; the read cap still holds.
                return 0
    return 0


async def _refuse(send: Any, limit: int) -> None:
    body = json.dumps({"detail": f"The request body is larger than {limit} bytes."}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
