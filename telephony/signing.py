"""Standard Webhooks signatures (standardwebhooks.com) for both directions of the telephony link.

Inbound requests must carry `webhook-id`, `webhook-timestamp` and `webhook-signature` signed with
any of the secrets in `settings.TELEPHONY_WEBHOOK_SECRET` (several during a rotation); outbound
requests are signed with the first one. The timestamp tolerance is the package's: 5 minutes.
A request without a body (the pull) signs its method and path instead, so a captured signature
fetches nothing but what it was made for, and only once.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import logging
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from django.conf import settings
from django.core.cache import cache
from standardwebhooks.webhooks import Webhook

logger = logging.getLogger(__name__)

SIGNATURE_HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature")
SECRET_PREFIX = "whsec_"
MIN_SECRET_BYTES = 24
# A timestamp is accepted up to 5 minutes either side of now, so a webhook-id need be
# remembered no longer than that window.
REPLAY_WINDOW_SECONDS = 10 * 60


class SignatureRejected(Exception):
    """The request is not signed by the telephony system (missing, wrong or stale signature)."""


@dataclass(frozen=True)
class VerifiedRequest:
    webhook_id: str
    # Which configured secret signed it (a digest, never the secret): one per telephony system.
    signer: str


def secret_problem(secret: str) -> str | None:
    """Why `secret` may not sign the telephony link, or None when it may."""
    if not secret.startswith(SECRET_PREFIX):
        return f"does not start with {SECRET_PREFIX}"
    try:
        key = base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)
    except (binascii.Error, ValueError):
        return f"is not {SECRET_PREFIX} followed by base64"
    if len(key) < MIN_SECRET_BYTES:
        return f"decodes to {len(key)} bytes; use at least {MIN_SECRET_BYTES} random bytes"
    return None


def signed_request_content(*, method: str, path: str) -> str:
    """What a request without a body signs in the body's place: `GET /api/telephony/calls/CA1/`."""
    return f"{method.upper()} {path}"


def is_first_use(webhook_id: str) -> bool:
    """True the first time a verified `webhook_id` is seen within the replay window (shared by
    every server through the cache)."""
    digest = hashlib.sha256(webhook_id.encode("utf-8", "surrogatepass")).hexdigest()
    return cache.add(f"telephony-webhook-id:{digest}", True, timeout=REPLAY_WINDOW_SECONDS)


@functools.lru_cache(maxsize=8)
def _webhooks(secrets: tuple[str, ...]) -> tuple[tuple[str, Webhook], ...]:
    webhooks = []
    for position, secret in enumerate(secrets):
        try:
            webhooks.append((hashlib.sha256(secret.encode()).hexdigest()[:16], Webhook(secret)))
        except Exception:
            # A mistyped secret must not lock out the others during a rotation.
            logger.error(
                "TELEPHONY_WEBHOOK_SECRET entry %d is not a whsec_<base64> secret", position
            )
    return tuple(webhooks)


def configured_webhooks() -> tuple[tuple[str, Webhook], ...]:
    """Each configured secret's signer digest and its Webhook, in the configured order."""
    secrets = settings.TELEPHONY_WEBHOOK_SECRET
    if isinstance(secrets, str):
        secrets = [secrets]
    return _webhooks(tuple(secret.strip() for secret in secrets if secret.strip()))


def verify_signature(*, body: bytes, headers: Mapping[str, str]) -> VerifiedRequest:
    """The verified `webhook-id` and its signer, or SignatureRejected saying why."""
    signed_headers = {name: headers.get(name, "") for name in SIGNATURE_HEADERS}
    missing = [name for name, value in signed_headers.items() if not value]
    if missing:
        raise SignatureRejected(f"Missing signature header(s): {', '.join(missing)}.")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as not_utf8:
        raise SignatureRejected(
            "The body is not UTF-8, so its signature cannot match."
        ) from not_utf8
    webhooks = configured_webhooks()
    if not webhooks:
        raise SignatureRejected("No webhook secret is configured; every request is refused.")
    reason = "No matching signature."
    for signer, webhook in webhooks:
        try:
            webhook.verify(text, signed_headers, json_parse=False)
        except Exception as refused:
            # The package raises more than its own error for garbled headers (bad base64,
            # a signature without a comma, an absurd timestamp): all of them mean "refused".
            reason = str(refused) if "timestamp" in str(refused).lower() else reason
            continue
        return VerifiedRequest(webhook_id=signed_headers["webhook-id"], signer=signer)
    raise SignatureRejected(reason)


def sign(
    *, body: str | bytes, msg_id: str | None = None, timestamp: int | None = None
) -> dict[str, str]:
    """Headers that sign `body` with the first configured secret (for outbound requests)."""
    webhooks = configured_webhooks()
    if not webhooks:
        raise SignatureRejected("No webhook secret is configured; cannot sign.")
    _, first = webhooks[0]
    return signature_headers(webhook=first, body=body, msg_id=msg_id, timestamp=timestamp)


def signature_headers(
    *,
    webhook: Webhook,
    body: str | bytes,
    msg_id: str | None = None,
    timestamp: int | None = None,
) -> dict[str, str]:
    """The three Standard Webhooks headers for `body` signed with `webhook`'s secret."""
    text = body.decode("utf-8") if isinstance(body, bytes) else body
    msg_id = msg_id or f"msg_{uuid.uuid4().hex}"
    timestamp = int(time.time()) if timestamp is None else timestamp
    signature = webhook.sign(
        msg_id=msg_id, timestamp=datetime.fromtimestamp(timestamp, tz=UTC), data=text
    )
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature,
    }
