"""Standard Webhooks signatures, both ways: the `standardwebhooks` package signs and verifies."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from datetime import UTC, datetime

from standardwebhooks import Webhook


def signed_headers(webhook: Webhook, body: str, *, msg_id: str | None = None) -> dict[str, str]:
    """`webhook-id`, `webhook-timestamp` and `webhook-signature` for `body`, signed now."""
    msg_id = msg_id or f"msg_{secrets.token_hex(12)}"
    now = datetime.now(UTC)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": webhook.sign(msg_id, now, body),
    }


def signed_request_headers(webhook: Webhook, method: str, path: str) -> dict[str, str]:
    """The headers for a request without a body: Rapport checks `{method} {path}` (the path
    percent-decoded) where a body would be signed."""
    return signed_headers(webhook, f"{method.upper()} {path}")


def is_signed(webhook: Webhook, body: str, headers: Mapping[str, str]) -> bool:
    try:
        webhook.verify(body, dict(headers), json_parse=False)
    except Exception:
        # Garbled headers raise more than the package's own error (bad base64, no comma):
        # every one of them means "not signed by Rapport".
        return False
    return True
