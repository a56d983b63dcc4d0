"""Model instances from hand-written, prepared SQL, for the statements every offer runs.

On the router's path the ORM spent longer building each statement than PostgreSQL spent
answering it: the hottest reads are written once as SQL, selecting whole rows of one or more
models side by side, and turned back into ordinary instances here. Generic: it knows no app's
models.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

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


def first_where(model: type[Model], condition: str, params: Mapping[str, Any]) -> Model | None:
    """The first `model` row meeting `condition` (SQL after WHERE, which may order and limit),
    or None: a plain prepared SELECT for lookups on a hot path, whose ORM querysets cost more
    to build than to answer."""
    table = model._meta.db_table
    with prepared_cursor() as cursor:
        cursor.execute(f'SELECT {columns(model, table)} FROM "{table}" WHERE {condition}', params)
        row = cursor.fetchone()
    return None if row is None else instance(model, row)
