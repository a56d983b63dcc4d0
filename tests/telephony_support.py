"""Helpers for the telephony tests: a webhook secret and correctly signed requests."""

from __future__ import annotations

import base64
import json
import secrets
from datetime import UTC, datetime
from typing import Any

import pytest

from telephony.signing import sign

EVENTS_URL = "/api/telephony/events/"


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
    """Headers for Django's test client (HTTP_ prefixed)."""
    headers = sign(body=body, msg_id=webhook_id)
    return {"HTTP_" + name.upper().replace("-", "_"): value for name, value in headers.items()}


def post_event(client, payload: Any, *, webhook_id: str | None = None, **extra):
    body = payload if isinstance(payload, (str, bytes)) else json.dumps(payload)
    headers = signed_headers(body, webhook_id)
    headers.update(extra)
    return client.generic("POST", EVENTS_URL, body, content_type="application/json", **headers)
