"""`POST /api/telephony/events/` answered on the server's event loop, in front of Django.

The checks are the webhook's own (`validation`): media type, signature, the signer's rate, the
body and every field, with the same answers. A valid event is recorded by the one statement
that records every event (`telephony.recording`), over the loop's own database connections
(the intake's lane: infrastructure.database.on_loop), autocommitted, so durable before the
202; then a Celery task is published to apply it (`telephony.applying`): the call's state, the
agent, the router. Applying in a request thread
cost four to five trivial requests of CPU per event, most of it Django's thread hop and the
transaction's round trips (bench/README.md).

The 202 says the event is recorded: `{"status": "accepted", "duplicate": false}`. Where the
call stands is the pull's to say (`GET /api/telephony/calls/<call_id>/`). An event whose task
is lost (the broker was away) is applied by beat's `telephony.apply_events_waiting_too_long`.

The Django view (`api`) answers every other way in (a WSGI server) the same way.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import psycopg
from django.db import OperationalError
from django.urls import reverse
from rest_framework import exceptions
from rest_framework.renderers import JSONRenderer
from rest_framework.settings import api_settings

from infrastructure import dispatch
from telephony import applying, placed_calls, recording
from telephony.signed_events import rate_limit
from telephony.signed_events.validation import (
    DUPLICATE_ANSWER,
    MAX_BODY_BYTES,
    RECORDED_ANSWER,
    PayloadTooLarge,
    WebhookIdReused,
    validated_event,
    verified_event_request,
)

logger = logging.getLogger(__name__)

AUTHENTICATE = b'Signature realm="telephony"'
# After a publish failed, events are only recorded for this long (beat's task applies them):
# each try would hold its event's answer for the broker's connect timeout.
BROKER_REST_SECONDS = 5.0

_RECORDED = JSONRenderer().render(RECORDED_ANSWER)
_DUPLICATE = JSONRenderer().render(DUPLICATE_ANSWER)


class TelephonyEventIntake:
    """ASGI middleware: the events endpoint here, every other request to `app`."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.path = reverse("telephony-events")
        self._broker_resting_until = 0.0

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] != self.path or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        try:
            answer = await self._accept(scope, receive)
        except exceptions.APIException as refused:
            answer = _refusal(refused)
        except (psycopg.OperationalError, psycopg.InterfaceError) as unreachable:
            # The loop's connections are psycopg's own, so their errors are not Django's; as
            # Django's, the API's handler answers them (503, Retry-After): PostgreSQL away, or
            # a lock or statement timeout (nothing recorded either way). The Redis calls
            # answer for themselves: the rate limit counts nothing, the publish leaves the
            # event to beat.
            answer = _refusal(OperationalError(str(unreachable)))
        await _send_json(send, *answer)

    async def _accept(self, scope: dict, receive: Any) -> tuple[int, bytes, list]:
        body = await _read_body(scope, receive)
        headers = {
            name.decode("latin-1").lower(): value.decode("latin-1")
            for name, value in scope["headers"]
        }
        verified = verified_event_request(
            body=body, content_type=headers.get("content-type", ""), headers=headers
        )
        wait = await rate_limit.seconds_to_wait_on_loop(signer=verified.signer)
        if wait is not None:
            raise exceptions.Throttled(wait)
        event = await placed_calls.as_placed_try_on_loop(validated_event(verified, body))
        event_id = await recording.record_event_on_loop(webhook_id=verified.webhook_id, event=event)
        if event_id is None:
            if not await recording.is_stored_as_on_loop(
                webhook_id=verified.webhook_id, event=event
            ):
                raise WebhookIdReused()
            return 202, _DUPLICATE, []
        await self._publish(event_id)
        return 202, _RECORDED, []

    async def _publish(self, event_id: int) -> None:
        """Hand the recorded event to a worker; while the broker is away, leave it to beat."""
        if time.monotonic() < self._broker_resting_until:
            return
        if not await dispatch.publish_on_loop(applying.APPLY_RECORDED_EVENT, event_id):
            self._broker_resting_until = time.monotonic() + BROKER_REST_SECONDS


async def _read_body(scope: dict, receive: Any) -> bytes:
    for name, value in scope["headers"]:
        if name.lower() == b"content-length" and value.isdigit() and int(value) > MAX_BODY_BYTES:
            raise PayloadTooLarge()
    body = bytearray()
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            # Nobody waits for the answer; nothing was recorded.
            raise exceptions.ParseError("The client went away before the body was read.")
        body += message.get("body", b"")
        if len(body) > MAX_BODY_BYTES:
            raise PayloadTooLarge()
        if not message.get("more_body"):
            return bytes(body)


def _refusal(refused: Exception) -> tuple[int, bytes, list]:
    """The answer the view would give: the API's exception handler's
    (infrastructure.api_errors)."""
    response = api_settings.EXCEPTION_HANDLER(refused, {})
    headers = [
        (name.lower().encode(), value.encode())
        for name, value in response.items()
        if name.lower() != "content-type"
    ]
    if isinstance(refused, exceptions.AuthenticationFailed | exceptions.NotAuthenticated):
        headers.append((b"www-authenticate", AUTHENTICATE))
    return response.status_code, JSONRenderer().render(response.data), headers


async def _send_json(send: Any, status: int, body: bytes, headers: list) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
