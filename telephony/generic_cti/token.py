"""The Generic CTI token (`TELEPHONY_CTI_TOKEN`): the endpoint's only credential, and it travels
in the URL, `/api/telephony/cti/<token>/`. So:

- it must be long and random (`token_problem`: URL-safe, and as strong as any token must be,
  infrastructure.tokens; telephony.checks refuses to start without);
- no URL of the endpoint is logged with its token (`TokenFilter`, on the log handler: Django
  logs the path of every refused request, "Bad Request: /api/telephony/cti/<token>/");
- guessing it is slowed to `TELEPHONY_CTI_GUESS_LIMIT` wrong tokens per client address
  (`seconds_until_next_guess`), after which that address is answered 429 whatever token it
  sends, so the right one cannot be told from a wrong one until the window has passed.

This module imports no models: the logging configuration, which loads before the apps, uses it.
"""

from __future__ import annotations

import logging
import re
import string
import time

from django.conf import settings
from limits.errors import StorageError

from infrastructure.log_filters import RewritingFilter
from infrastructure.tokens import weak_token_problem
from telephony.signed_events import rate_limit

logger = logging.getLogger(__name__)

# What a URL path segment carries as written (RFC 3986's unreserved characters).
URL_SAFE = frozenset(string.ascii_letters + string.digits + "-._~")
SHOWN_INSTEAD = "<TELEPHONY_CTI_TOKEN>"

# The endpoint's path segment after .../telephony/cti/ (telephony/urls.py mounts it there).
_TOKEN_IN_PATH = re.compile(r"(/telephony/cti/)[^/\s?#\"']+")


def token_problem(token: str) -> str | None:
    """Why `token` may not guard the endpoint, or None when it may. Never names the token."""
    if not set(token) <= URL_SAFE:
        return "may hold only letters, digits and - . _ ~ (it is a URL path segment)"
    return weak_token_problem(token)


class TokenFilter(RewritingFilter):
    """Installed on the log handlers: a Generic CTI URL is written with its token replaced, and
    the configured token, wherever it appears, too."""

    def rewrite(self, text: str) -> str:
        return _without_token(text)


def _without_token(text: str) -> str:
    configured = getattr(settings, "TELEPHONY_CTI_TOKEN", "")
    if configured and configured in text:
        text = text.replace(configured, SHOWN_INSTEAD)
    if "/telephony/cti/" in text:
        text = _TOKEN_IN_PATH.sub(rf"\g<1>{SHOWN_INSTEAD}", text)
    return text


def seconds_until_next_guess(address: str | None) -> float | None:
    """None while `address` has wrong tokens left in its budget; otherwise the seconds until it
    has one again. Like the webhook's rate limit, None while the count cannot be reached."""
    limit = rate_limit.parse_rate(settings.TELEPHONY_CTI_GUESS_LIMIT)
    limiter = rate_limit.shared_limiter()
    try:
        if limiter.test(limit, *_identifiers(address)):
            return None
        reset_at = limiter.get_window_stats(limit, *_identifiers(address)).reset_time
    except StorageError as unreachable:
        logger.warning("generic cti guesses not counted: %s", unreachable.storage_error)
        return None
    return max(1.0, reset_at - time.time())


def count_wrong_guess(address: str | None) -> None:
    limit = rate_limit.parse_rate(settings.TELEPHONY_CTI_GUESS_LIMIT)
    try:
        rate_limit.shared_limiter().hit(limit, *_identifiers(address))
    except StorageError as unreachable:
        logger.warning("generic cti guess not counted: %s", unreachable.storage_error)


def _identifiers(address: str | None) -> tuple[str, ...]:
    return rate_limit.identifiers("telephony-cti-guesses", address or "unknown")
