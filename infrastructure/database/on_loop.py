"""Statements run on the running event loop itself, over autocommit connections of that loop's
own, instead of in a thread: a socket's read before each offer waited for the one thread
Channels gives every socket's database work, and for the event loop again after it; the
webhook's intake records each event this way before it answers.

Each loop keeps a few connections per lane (`DB_LOOP_CONNECTIONS`), opened as needed: the
webhook's intake has a lane of its own (`WEBHOOK_INTAKE`), so it never queues behind the
sockets' session checks, and a statement waiting on one call's locked row holds one connection,
not the loop's only one: events for other calls go on. No statement waits for long:
`lock_timeout` and `statement_timeout` (`DB_LOOP_LOCK_TIMEOUT_SECONDS`,
`DB_LOOP_STATEMENT_TIMEOUT_SECONDS`) make a stuck one fail (psycopg's OperationalError), which
the intake answers 503 with Retry-After: the event was not recorded, and the sender retries it.
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import psycopg
from django.conf import settings
from django.db import connection

# The webhook's intake; everything else (the sockets' session checks) shares the default lane.
WEBHOOK_INTAKE = "webhook-intake"
DEFAULT = "default"


class _Lane:
    """One loop's connections for one lane: at most `size` at once, idle ones kept."""

    def __init__(self, size: int) -> None:
        self.free = asyncio.Semaphore(size)
        self.idle: list[psycopg.AsyncConnection] = []

    @contextlib.asynccontextmanager
    async def lent(self, *, fresh: bool = False) -> AsyncIterator[psycopg.AsyncConnection]:
        async with self.free:
            if fresh:
                self.discard_idle()
            while self.idle and _unusable(self.idle[-1]):
                self.idle.pop()
            lent = self.idle.pop() if self.idle else await _connect()
            try:
                yield lent
            finally:
                if not _unusable(lent):
                    self.idle.append(lent)

    def discard_idle(self) -> None:
        for idle in self.idle:
            idle.pgconn.finish()
        self.idle.clear()


_lanes: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, _Lane]] = (
    weakref.WeakKeyDictionary()
)


async def fetchone(
    sql: str, params: Sequence[Any] | Mapping[str, Any], *, lane: str = DEFAULT
) -> tuple[Any, ...] | None:
    """One row of `sql`, run on the running event loop over one of the loop's autocommit
    connections of `lane`. Prepared on the server. A write is committed when this returns. A
    connection the server closed is replaced (and the lane's idle ones with it: the server
    restarted), and the statement run once more: a write must be one that a second run cannot
    repeat (the webhook's intake: once per webhook id)."""
    loop_lane = _lane(lane)
    async with loop_lane.lent() as lent:
        try:
            return await _fetchone(lent, sql, params)
        except psycopg.OperationalError:
            if not _unusable(lent):
                raise
    async with loop_lane.lent(fresh=True) as lent:
        return await _fetchone(lent, sql, params)


async def open_connections(lane: str, count: int = 1, *, then_run: Sequence[str] = ()) -> None:
    """Open `count` of the running loop's connections of `lane` now (a server's start), not on
    their first statement: the first caller's event would wait for the connect. Each runs the
    statements `then_run` (no parameters)."""
    async with contextlib.AsyncExitStack() as lent:
        for _ in range(min(count, settings.DB_LOOP_CONNECTIONS)):
            opened = await lent.enter_async_context(_lane(lane).lent())
            for sql in then_run:
                await opened.execute(sql)


async def _fetchone(
    lent: psycopg.AsyncConnection, sql: str, params: Sequence[Any] | Mapping[str, Any]
) -> tuple[Any, ...] | None:
    async with lent.cursor() as cursor:
        await cursor.execute(sql, params, prepare=True)
        return await cursor.fetchone()


def _lane(name: str) -> _Lane:
    lanes = _lanes.setdefault(asyncio.get_running_loop(), {})
    if name not in lanes:
        lanes[name] = _Lane(settings.DB_LOOP_CONNECTIONS)
    return lanes[name]


def _unusable(lent: psycopg.AsyncConnection) -> bool:
    return lent.closed or lent.broken


async def _connect() -> psycopg.AsyncConnection:
    params = connection.get_connection_params()
    # Django's own (sync) cursor class; the adapters and everything else are Django's.
    params.pop("cursor_factory", None)
    opened = await psycopg.AsyncConnection.connect(**params, autocommit=True)
    _opened.add(opened)
    try:
        await opened.execute(
            "SELECT set_config('lock_timeout', %s, false), "
            "set_config('statement_timeout', %s, false)",
            [
                _milliseconds(settings.DB_LOOP_LOCK_TIMEOUT_SECONDS),
                _milliseconds(settings.DB_LOOP_STATEMENT_TIMEOUT_SECONDS),
            ],
        )
    except BaseException:
        opened.pgconn.finish()
        raise
    return opened


def _milliseconds(seconds: float) -> str:
    # 0 is PostgreSQL's "no limit".
    return f"{max(0, round(seconds * 1000))}ms"


_opened: weakref.WeakSet[psycopg.AsyncConnection] = weakref.WeakSet()


def close_all() -> None:
    """Close every loop's connections, from any thread, the loops running or long gone: a
    server has one loop for its life, but each test's sockets run on a loop of their own."""
    for opened in list(_opened):
        opened.pgconn.finish()
    _opened.clear()
    _lanes.clear()
