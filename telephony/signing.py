"""Standard Webhooks signatures (standardwebhooks.com) for both directions of the telephony link.

Inbound requests must carry `webhook-id`, `webhook-timestamp` and `webhook-signature` signed with
any of the secrets in `settings.TELEPHONY_WEBHOOK_SECRET` (several during a rotation); outbound
requests are signed with the first one. The timestamp tolerance is the package's: 5 minutes.
"""

from __future__ import annotations

import functools
import logging
import time
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime

from django.conf import settings
from standardwebhooks.webhooks import Webhook

logger = logging.getLogger(__name__)

SIGNATURE_HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature")


class SignatureRejected(Exception):
    """The request is not signed by the telephony system (missing, wrong or stale signature)."""


@functools.lru_cache(maxsize=8)
def _webhooks(secrets: tuple[str, ...]) -> tuple[Webhook, ...]:
    webhooks = []
    for position, secret in enumerate(secrets):
        try:
            webhooks.append(Webhook(secret))
        except Exception:
            # A mistyped secret must not lock out the others during a rotation.
            logger.error(
                "TELEPHONY_WEBHOOK_SECRET entry %d is not a whsec_<base64> secret", position
            )
    return tuple(webhooks)


def configured_webhooks() -> tuple[Webhook, ...]:
    secrets = settings.TELEPHONY_WEBHOOK_SECRET
    if isinstance(secrets, str):
        secrets = [secrets]
    return _webhooks(tuple(secret.strip() for secret in secrets if secret.strip()))


def verify_signature(*, body: bytes, headers: Mapping[str, str]) -> str:
    """Return the verified `webhook-id`, or raise SignatureRejected saying why."""
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
    for webhook in webhooks:
        try:
            webhook.verify(text, signed_headers, json_parse=False)
        except Exception as refused:
            # The package raises more than its own error for garbled headers (bad base64,
            # a signature without a comma, an absurd timestamp): all of them mean "refused".
            reason = str(refused) if "timestamp" in str(refused).lower() else reason
            continue
        return signed_headers["webhook-id"]
    raise SignatureRejected(reason)


def sign(
    *, body: str | bytes, msg_id: str | None = None, timestamp: int | None = None
) -> dict[str, str]:
    """Headers that sign `body` with the first configured secret (for outbound requests)."""
    webhooks = configured_webhooks()
    if not webhooks:
        raise SignatureRejected("No webhook secret is configured; cannot sign.")
    return signature_headers(webhook=webhooks[0], body=body, msg_id=msg_id, timestamp=timestamp)


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
