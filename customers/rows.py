"""Model instances from hand-written, prepared SQL, for the statements every offer runs.

On the router's path the ORM spent longer building each statement than PostgreSQL spent
answering it (issue 14): the hottest reads are written once as SQL, selecting whole rows of one
or more models side by side, and turned back into ordinary instances here.

Generic (it knows no app's models): it lives in customers, the lowest layer, so the caller
card's notes and the audit row can use it as well as routing.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from django.db import connection
from django.db.backends.postgresql.base import CursorDebugWrapper, ServerBindingCursor
from django.db.backends.utils import CursorWrapper
from django.db.models import Model

# Runs of a statement on one connection before it is prepared: the router's are run on every
# offer, and preparing costs a round trip of its own.
PREPARE_AFTER = 2


@contextmanager
def prepared_cursor() -> Iterator[Any]:
    """A cursor whose statements psycopg prepares on the server once they ran a few times on
    this connection (`PREPARE_AFTER`), so PostgreSQL stops planning them again: the
    offer's joins took longer to plan than to run. Server-side binding: the parameters must
    have a type PostgreSQL can tell (cast a None where the context does not say).
    Otherwise a cursor like `connection.cursor()`: logged and counted the same way."""
    connection.close_if_health_check_failed()
    connection.ensure_connection()
    with connection.wrap_database_errors:
        if connection.connection.prepare_threshold is None:
            # Django turns preparing off for the connection; its own client-binding cursors
            # never prepare whatever this says, so this reaches only cursors made here.
            connection.connection.prepare_threshold = PREPARE_AFTER
        raw = ServerBindingCursor(connection.connection)
    if connection.queries_logged:
        connection.validate_thread_sharing()
        cursor = _LoggedAsWritten(raw, connection)
    else:
        cursor = connection._prepare_cursor(raw)
    with cursor:
        yield cursor


class _LoggedAsWritten(CursorDebugWrapper):
    """Where queries are logged (DEBUG, tests counting them), a statement is logged as written:
    Django would log it with its parameters filled in, which it cannot do for a statement
    prepared on the server."""

    def execute(self, sql, params=None):
        with self.debug_sql(sql, params, use_last_executed_query=False):
            return CursorWrapper.execute(self, sql, params)


def columns(model: type[Model], alias: str) -> str:
    """Every column of `model`, read through `alias`, in the order `instance` expects."""
    return ", ".join(f'{alias}."{field.column}"' for field in model._meta.concrete_fields)


def width(model: type[Model]) -> int:
    return len(model._meta.concrete_fields)


def instance(model: type[Model], values: Sequence[Any]) -> Model:
    """`model` loaded from `values`, one per concrete field, as the ORM would have loaded it
    (the fields' own conversions applied: JSON, for one)."""
    fields = model._meta.concrete_fields
    converted = [
        field.from_db_value(value, None, connection)
        if value is not None and hasattr(field, "from_db_value")
        else value
        for field, value in zip(fields, values, strict=True)
    ]
    return model.from_db(connection.alias, [field.attname for field in fields], converted)


def split(row: Sequence[Any], *models: type[Model]) -> tuple[list[Sequence[Any]], list[Any]]:
    """The row's leading values, one slice per model, and whatever follows them."""
    slices, start = [], 0
    for model in models:
        slices.append(row[start : start + width(model)])
        start += width(model)
    return slices, list(row[start:])


# Reads made on the event loop itself -------------------------------------------------------


_loop_connections: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, asyncio.Task[psycopg.AsyncConnection]
] = weakref.WeakKeyDictionary()


async def fetchone_on_loop(
    sql: str, params: Sequence[Any] | Mapping[str, Any]
) -> tuple[Any, ...] | None:
    """One row of a statement run on the running event loop over an autocommit connection of
    that loop's own, instead of in a thread: a socket's read before each offer waited for the
    one thread Channels gives every socket's database work, and for the event loop again after
    it (issue 14). Prepared on the server. A write is committed when this returns. A
    connection the server closed is replaced, and the statement run once more: a write must
    be one that a second run cannot repeat (the webhook's intake: once per webhook id)."""
    loop_connection = await _loop_connection()
    try:
        return await _fetchone(loop_connection, sql, params)
    except psycopg.OperationalError:
        if not (loop_connection.closed or loop_connection.broken):
            raise
    return await _fetchone(await _loop_connection(), sql, params)


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


def close_loop_connections() -> None:
    """Close every loop's connection, from any thread, the loops running or long gone: a
    server has one loop for its life, but each test's sockets run on a loop of their own."""
    for opened in list(_opened):
        opened.pgconn.finish()
    _opened.clear()
    _loop_connections.clear()
