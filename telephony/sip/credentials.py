"""Softphone credentials: what an agent's browser registers with at Rapport's Kamailio.

The scheme is the "REST API for TURN" one that Kamailio's auth_ephemeral module checks: the
username is `<expiry unix time>:<telephony identity>`, the password
base64(HMAC-SHA1(SOFTPHONE_SHARED_SECRET, username)). Kamailio and Rapport share the secret and
nothing else: no account is stored at the PBX, and a credential dies by itself at its expiry.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import datetime
from typing import Any

from django.conf import settings

# Long enough for a working day; the console asks again before it runs out.
LIFETIME_SECONDS = 12 * 60 * 60


def softphone_configured() -> bool:
    return bool(
        settings.SOFTPHONE_SHARED_SECRET
        and settings.SOFTPHONE_WEBSOCKET_URL
        and settings.SOFTPHONE_SIP_DOMAIN
    )


def softphone_credentials(agent: Any, *, now: datetime) -> dict[str, Any]:
    """The credentials `agent`'s softphone registers with, valid until `expires` (unix time)."""
    expires = int(now.timestamp()) + LIFETIME_SECONDS
    username = f"{expires}:{agent.telephony_identity}"
    return {
        "websocket_url": settings.SOFTPHONE_WEBSOCKET_URL,
        "uri": f"sip:{agent.telephony_identity}@{settings.SOFTPHONE_SIP_DOMAIN}",
        "username": username,
        "password": ephemeral_password(username),
        "expires": expires,
    }


def ephemeral_password(username: str) -> str:
    digest = hmac.new(
        settings.SOFTPHONE_SHARED_SECRET.encode(), username.encode(), hashlib.sha1
    ).digest()
    return base64.b64encode(digest).decode()
