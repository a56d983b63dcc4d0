"""Handing work to the Celery workers: the one way Rapport publishes a task.

Publishing uses a pool of broker connections with short timeouts and no retries, shared by the
process (each ASGI request runs in a thread of its own), so a broker outage costs a request
milliseconds, never a hang. A publish that fails is only logged: the database already says what
is still to do, and the router's sweeper does it once the broker is back (`router.sweep`).
"""

from __future__ import annotations

import logging
import os
import threading

import kombu.exceptions
import redis.exceptions
from celery import current_app
from django.db import transaction

logger = logging.getLogger(__name__)

ROUTE_CALL = "routing.route_call"
OFFER_NEXT_CALL = "routing.offer_next_call"
# The telephony integration's, named here so the router's sweeper can ask for it: telephony
# imports routing, never the other way round.
RESEND_LOST_CONNECTS = "telephony.resend_lost_connects"

BROKER_ERRORS = (kombu.exceptions.KombuError, redis.exceptions.RedisError, OSError)

_pool_lock = threading.Lock()
_pool: tuple[tuple[int, str], object] | None = None


def _publishing_pool():
    """This process's pool for the configured broker; made again after a fork (Celery's prefork
    pool), whose child must not share its parent's sockets, or when the broker setting changes."""
    global _pool
    owner = (os.getpid(), current_app.conf.broker_url)
    with _pool_lock:
        if _pool is None or _pool[0] != owner:
            connection = current_app.connection_for_write(
                connect_timeout=1,
                transport_options={
                    **current_app.conf.broker_transport_options,
                    "max_retries": 0,
                    "socket_connect_timeout": 1,
                    "socket_timeout": 2,
                },
            )
            _pool = (owner, connection.Pool(limit=16))
        return _pool[1]


def publish(task_name: str, *args) -> bool:
    """Send the task now; False (and a warning) when the broker cannot be reached."""
    try:
        with _publishing_pool().acquire(block=True, timeout=2) as connection:
            current_app.send_task(
                task_name,
                args=args,
                retry=False,
                connection=connection,
                # Tasks go to a queue by its name (Celery's default, direct routing), which
                # needs no declaring: kombu's check that it was declared cost a tenth of a
                # publish every time. The worker declares the queues it consumes.
                declare=[],
                # The arguments are a few ids: shown as they are, not through Celery's
                # size-limited repr.
                argsrepr=repr(args),
                kwargsrepr="{}",
            )
    except BROKER_ERRORS as unreachable:
        logger.warning("broker unreachable, %s%r not sent now: %s", task_name, args, unreachable)
        return False
    return True


def publish_on_commit(task_name: str, *args) -> None:
    """Send the task once the current transaction commits (at once outside one)."""
    transaction.on_commit(lambda: publish(task_name, *args), robust=True)
