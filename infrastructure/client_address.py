"""Whose request this is, behind the reverse proxies in front (settings.NUM_PROXIES).

Each proxy appends the address it was reached from to `X-Forwarded-For`, so the client is the
NUM_PROXIES-th address from the right; anything further left was written by the client and
proves nothing. With no proxy the peer address is the client and the header is ignored. The
same rule DRF applies for its NUM_PROXIES; django-axes uses this one to lock logins out.
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest


def client_address(request: HttpRequest) -> str | None:
    proxies = settings.NUM_PROXIES
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    addresses = [address.strip() for address in forwarded.split(",") if address.strip()]
    if proxies > 0 and addresses:
        return addresses[-min(proxies, len(addresses))]
    return request.META.get("REMOTE_ADDR")
