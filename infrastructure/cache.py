"""Django's Redis cache with one connection pool per process.

Django keeps a cache object per request context (`caches` is context-local under ASGI), and its
`RedisCache` builds a new client, so a new connection pool, for each object: every request that
touched the cache opened a new Redis connection (a connect and redis-py's handshake) and dropped
it. The webhook's per-signer throttle did that on every event. Django's open PR #18459 reports
the same. Here the client, whose pool is thread-safe and reset after a fork, is shared by every
cache object of the process with the same servers and options.
"""

from __future__ import annotations

import threading
from typing import Any

from django.core.cache.backends.redis import RedisCache, RedisCacheClient
from django.utils.functional import cached_property

_clients: dict[tuple[tuple[str, ...], str], RedisCacheClient] = {}
_clients_lock = threading.Lock()


class SharedPoolRedisCache(RedisCache):
    @cached_property
    def _cache(self) -> Any:
        key = (tuple(self._servers), repr(sorted(self._options.items())))
        with _clients_lock:
            client = _clients.get(key)
            if client is None:
                client = _clients[key] = self._class(self._servers, **self._options)
        return client
