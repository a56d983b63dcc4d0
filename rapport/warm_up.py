"""What a process opens at start, so the morning's first caller pops as fast as the hundredth.

Opened on first use, the connections, pools and the phone-number metadata cost the first calls
after a start up to 250 ms more than the rest (bench/first_calls.py): a worker process's
database connection and broker and channel-layer clients, the phone-number library's metadata,
the server's own connections on its event loop. Each is opened here, before the first call;
a service that is not reachable yet is only logged, and opened on first use as before.

They stay warm across quiet hours: the loop's connection and the Redis clients are kept for
the process's life, and a worker's database connection is renewed after a task, not before
the next one (`rapport.celery`).
"""

from __future__ import annotations

import logging
from pathlib import Path

from asgiref.sync import sync_to_async
from django.apps import apps
from django.conf import settings
from django.db import DatabaseError, connection

from customers.phone_numbers import normalise_phone_number
from infrastructure import broadcast, dispatch
from infrastructure.database import on_loop
from infrastructure.paths import BASE_DIR

logger = logging.getLogger(__name__)

# Any number: parsing one loads the metadata every caller's number is parsed with.
_SAMPLE_NUMBER = "+14155550100"


def warm_worker_process() -> None:
    """A Celery pool process, before its first task."""
    _open_database_connection()
    _plan_on_every_table()
    dispatch.open_pool()
    broadcast.open_connections()
    normalise_phone_number(_SAMPLE_NUMBER)


async def warm_server() -> None:
    """The ASGI server, on its event loop, before it takes requests (lifespan startup)."""
    try:
        # Every connection the webhook's intake may use in a burst, and one for the sockets.
        plans = _plans_on_every_table()
        await on_loop.open_connections(
            on_loop.WEBHOOK_INTAKE, settings.DB_LOOP_CONNECTIONS, then_run=plans
        )
        await on_loop.open_connections(on_loop.DEFAULT, then_run=plans)
    except Exception as failed:  # noqa: BLE001 (any failure: the first statement tries again)
        logger.warning("database not reachable at start: %s: %s", type(failed).__name__, failed)
    await dispatch.open_on_loop()
    await sync_to_async(_warm_server_threads, thread_sensitive=False)()


def _warm_server_threads() -> None:
    if connection.settings_dict.get("OPTIONS", {}).get("pool"):
        # The pool (DB_POOL_MAX_SIZE) is made on first use; a thread's connection (without a
        # pool) would be that one thread's, so only the pool is opened here.
        _open_database_connection()
        connection.close()
    dispatch.open_pool()
    broadcast.open_connections()
    normalise_phone_number(_SAMPLE_NUMBER)


def _plan_on_every_table() -> None:
    """Have the connection's PostgreSQL backend read the catalogue of every table Rapport keeps
    (its columns, its indexes: what planning a statement on it reads), as the first calls
    would, statement by statement. A plan, not a read: nothing is locked or run."""
    try:
        with connection.cursor() as cursor:
            for sql in _plans_on_every_table():
                cursor.execute(sql)
    except DatabaseError as unreachable:
        logger.warning("database not reachable at start: %s", unreachable)


def _plans_on_every_table() -> list[str]:
    quote = connection.ops.quote_name
    return [
        f"EXPLAIN SELECT 1 FROM {quote(model._meta.db_table)} WHERE {quote(model._meta.pk.column)}"
        f" IS NULL"
        for config in apps.get_app_configs()
        if Path(config.path).is_relative_to(BASE_DIR)
        for model in config.get_models()
        if model._meta.managed and not model._meta.proxy
    ]


def _open_database_connection() -> None:
    try:
        connection.ensure_connection()
    except DatabaseError as unreachable:
        logger.warning("database not reachable at start: %s", unreachable)
