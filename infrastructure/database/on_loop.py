"""Statements run on the running event loop itself, over an autocommit connection of that
loop's own, instead of in a thread: a socket's read before each offer waited for the one thread
Channels gives every socket's database work, and for the event loop again after it; the
webhook's intake records each event this way before it answers."""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Mapping, Sequence
from typing import Any

import psycopg
from django.db import connection

_loop_connections: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, asyncio.Task[psycopg.AsyncConnection]
] = weakref.WeakKeyDictionary()


async def fetchone(sql: str, params: Sequence[Any] | Mapping[str, Any]) -> tuple[Any, ...] | None:
    """One row of `sql`, run on the running event loop over the loop's own autocommit
    connection. Prepared on the server. A write is committed when this returns. A connection the
    server closed is replaced, and the statement run once more: a write must be one that a
    second run cannot repeat (the webhook's intake: once per webhook id)."""
    loop_connection = await _loop_connection()
    try:
        return await _fetchone(loop_connection, sql, params)
    except psycopg.OperationalError:
        if not (loop_connection.closed or loop_connection.broken):
            raise
    return await _fetchone(await _loop_connection(), sql, params)


async def open_connection() -> None:
    """Open the running loop's connection now (a server's start), not on its first statement:
    the first caller's event would wait for the connect."""
    await _loop_connection()


async def _fetchone(
    loop_connection: psycopg.AsyncConnection, sql: str, params: Sequence[Any] | Mapping[str, Any]
) -> tuple[Any, ...] | None:
    async with loop_connection.cursor() as cursor:
        await cursor.execute(sql, params, prepare=True)
        return await cursor.fetchone()


async def _loop_connection() -> psycopg.AsyncConnection:
    loop = asyncio.get_running_loop()
    opening = _loop_connections.get(loop)
    if opening is None or _unusable(opening):
        # One connection for the loop, however many sockets ask for it at once.
        opening = _loop_connections[loop] = loop.create_task(_connect())
    return await asyncio.shield(opening)


def _unusable(opening: asyncio.Task[psycopg.AsyncConnection]) -> bool:
    if not opening.done():
        return False
    if opening.cancelled() or opening.exception() is not None:
        return True
    return opening.result().closed or opening.result().broken


async def _connect() -> psycopg.AsyncConnection:
    params = connection.get_connection_params()
    # Django's own (sync) cursor class; the adapters and everything else are Django's.
    params.pop("cursor_factory", None)
    opened = await psycopg.AsyncConnection.connect(**params, autocommit=True)
    _opened.add(opened)
    return opened


_opened: weakref.WeakSet[psycopg.AsyncConnection] = weakref.WeakSet()


def close_all() -> None:
    """Close every loop's connection, from any thread, the loops running or long gone: a
    server has one loop for its life, but each test's sockets run on a loop of their own."""
    for opened in list(_opened):
        opened.pgconn.finish()
    _opened.clear()
    _loop_connections.clear()
