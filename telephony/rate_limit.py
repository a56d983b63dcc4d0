"""The webhook's budget per signing secret (one telephony system), shared by every server.

Counted in Redis by `limits` over a moving window: one Lua call per event, its timestamps kept
in Redis. DRF's cache throttle read the sender's whole history out of the cache, unpickled it,
pickled it back and wrote it on every event (two round trips and about a fifth of the
webhook's CPU). The rate keeps DRF's form: "200/s", "600/m", "N/h", "N/d".
"""

from __future__ import annotations

import functools
import logging
import re
import time

from django.conf import settings
from limits import RateLimitItem, RateLimitItemPerSecond
from limits.errors import StorageError
from limits.storage import RedisStorage
from limits.strategies import MovingWindowRateLimiter

logger = logging.getLogger(__name__)

_PERIOD_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_RATE = re.compile(
    r"^\s*([1-9][0-9]*)\s*/\s*(s|secs?|seconds?|m|mins?|minutes?|h|hours?|d|days?)\s*$"
)
# A Redis that does not answer must not hold a call's event for long.
_REDIS_TIMEOUT_SECONDS = 1.0


def seconds_to_wait(*, signer: str) -> float | None:
    """Spends one request of the signer's budget: None when it had one left, otherwise the
    seconds until it has (nothing is spent then). Always None with the limit off, and while
    the count cannot be reached: a flood guard must not turn a Redis outage into refused calls
    (their events go to PostgreSQL, and are routed once the broker is back)."""
    if not settings.TELEPHONY_RATE_LIMIT:
        return None
    limit = parse_rate(settings.TELEPHONY_RATE_LIMIT)
    limiter = _limiter(settings.REDIS_URL)
    identifiers = (settings.CACHES["default"].get("KEY_PREFIX", ""), "telephony", signer)
    try:
        if limiter.hit(limit, *identifiers):
            return None
        reset_at = limiter.get_window_stats(limit, *identifiers).reset_time
    except StorageError as unreachable:
        logger.warning("webhook rate limit not counted: %s", unreachable.storage_error)
        return None
    return max(1.0, reset_at - time.time())


@functools.cache
def parse_rate(rate: str) -> RateLimitItem:
    """ "200/s", "3000/m", "100000/hour": requests per period. ValueError when it is not one
    (rapport.checks refuses such a setting at start)."""
    matched = _RATE.match(rate)
    if matched is None:
        raise ValueError(f"{rate!r} is not a rate")
    count, period = matched.groups()
    return RateLimitItemPerSecond(int(count), _PERIOD_SECONDS[period[0]])


@functools.cache
def _limiter(redis_url: str) -> MovingWindowRateLimiter:
    # Celery, Channels and Django name a Redis on a Unix socket unix://; `limits` redis+unix://.
    if redis_url.startswith("unix://"):
        redis_url = "redis+unix://" + redis_url.removeprefix("unix://")
    storage = RedisStorage(
        redis_url,
        wrap_exceptions=True,
        socket_timeout=_REDIS_TIMEOUT_SECONDS,
        socket_connect_timeout=_REDIS_TIMEOUT_SECONDS,
    )
    return MovingWindowRateLimiter(storage)
