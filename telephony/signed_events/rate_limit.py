"""The webhook's budget per signing secret (one telephony system), shared by every server.

Counted in Redis by `limits` over a moving window: one Lua call per event, its timestamps kept
in Redis. DRF's cache throttle read the sender's whole history out of the cache, unpickled it,
pickled it back and wrote it on every event (two round trips and about a fifth of the
webhook's CPU). The rate keeps DRF's form: "200/s", "600/m", "N/h", "N/d".
"""

from __future__ import annotations

import asyncio
import functools
import logging
import re
import time
import weakref

from django.conf import settings
from limits import RateLimitItem, RateLimitItemPerSecond
from limits.aio.storage import RedisStorage as LoopRedisStorage
from limits.aio.strategies import MovingWindowRateLimiter as LoopMovingWindowRateLimiter
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
    try:
        if limiter.hit(limit, *_identifiers(signer)):
            return None
        reset_at = limiter.get_window_stats(limit, *_identifiers(signer)).reset_time
    except StorageError as unreachable:
        logger.warning("webhook rate limit not counted: %s", unreachable.storage_error)
        return None
    return max(1.0, reset_at - time.time())


async def seconds_to_wait_on_loop(*, signer: str) -> float | None:
    """`seconds_to_wait` for the webhook's intake, which runs on the event loop: the same
    budget in the same Redis keys, counted without blocking the loop."""
    if not settings.TELEPHONY_RATE_LIMIT:
        return None
    limit = parse_rate(settings.TELEPHONY_RATE_LIMIT)
    limiter = _loop_limiter(settings.REDIS_URL)
    try:
        if await limiter.hit(limit, *_identifiers(signer)):
            return None
        reset_at = (await limiter.get_window_stats(limit, *_identifiers(signer))).reset_time
    except StorageError as unreachable:
        logger.warning("webhook rate limit not counted: %s", unreachable.storage_error)
        return None
    return max(1.0, reset_at - time.time())


def _identifiers(signer: str) -> tuple[str, ...]:
    return identifiers("telephony", signer)


def identifiers(*parts: str) -> tuple[str, ...]:
    """The keys of one budget in the shared Redis, under the cache's prefix."""
    return (settings.CACHES["default"].get("KEY_PREFIX", ""), *parts)


def shared_limiter() -> MovingWindowRateLimiter:
    """The moving-window counter in the shared Redis, for another budget than the webhook's
    (Generic CTI's wrong tokens: telephony.generic_cti.token)."""
    return _limiter(settings.REDIS_URL)


@functools.cache
def parse_rate(rate: str) -> RateLimitItem:
    """ "200/s", "3000/m", "100000/hour": requests per period. ValueError when it is not one
    (telephony.checks refuses such a setting at start)."""
    matched = _RATE.match(rate)
    if matched is None:
        raise ValueError(f"{rate!r} is not a rate")
    count, period = matched.groups()
    return RateLimitItemPerSecond(int(count), _PERIOD_SECONDS[period[0]])


@functools.cache
def _limiter(redis_url: str) -> MovingWindowRateLimiter:
    storage = RedisStorage(
        _limits_url(redis_url),
        wrap_exceptions=True,
        socket_timeout=_REDIS_TIMEOUT_SECONDS,
        socket_connect_timeout=_REDIS_TIMEOUT_SECONDS,
    )
    return MovingWindowRateLimiter(storage)


# An asyncio Redis client belongs to the loop it first ran on: one per loop (a server has one
# for its life; each test's requests may run on a loop of their own).
_loop_limiters: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, tuple[str, LoopMovingWindowRateLimiter]
] = weakref.WeakKeyDictionary()


def _loop_limiter(redis_url: str) -> LoopMovingWindowRateLimiter:
    loop = asyncio.get_running_loop()
    known = _loop_limiters.get(loop)
    if known is None or known[0] != redis_url:
        storage = LoopRedisStorage(
            "async+" + _limits_url(redis_url),
            implementation="redispy",
            wrap_exceptions=True,
            socket_timeout=_REDIS_TIMEOUT_SECONDS,
            socket_connect_timeout=_REDIS_TIMEOUT_SECONDS,
        )
        known = _loop_limiters[loop] = (redis_url, LoopMovingWindowRateLimiter(storage))
    return known[1]


def _limits_url(redis_url: str) -> str:
    # Celery, Channels and Django name a Redis on a Unix socket unix://; `limits` redis+unix://.
    if redis_url.startswith("unix://"):
        return "redis+unix://" + redis_url.removeprefix("unix://")
    return redis_url
