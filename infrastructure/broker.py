"""Celery's Redis transport, keeping one Redis client per channel for the commands it sends.

kombu's Redis channel builds a new `redis.Redis` for every command it sends outside the worker's
event loop: publishing a task built one each time, and redis-py's constructor (its table of
response callbacks) was a quarter of the CPU a publish costs, which the telephony webhook pays
on every new call. The client holds no connection of its own (each command borrows
one from the channel's pool, as before), so one client serves every command and thread.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import redis as redis_py
from kombu.transport import redis


class Channel(redis.Channel):
    _commands_client: redis_py.Redis | None = None

    @contextmanager
    def conn_or_acquire(self, client: redis_py.Redis | None = None) -> Iterator[redis_py.Redis]:
        if client:
            yield client
            return
        pool = self.pool
        if self._commands_client is None or self._commands_client.connection_pool is not pool:
            self._commands_client = self._create_client()
        yield self._commands_client


class Transport(redis.Transport):
    Channel = Channel
