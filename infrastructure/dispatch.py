"""Handing work to the Celery workers: the one way Rapport publishes a task.

Publishing uses a pool of broker connections with short timeouts and no retries, shared by the
process (each ASGI request runs in a thread of its own), so a broker outage costs a request
milliseconds, never a hang. A publish that fails is only logged: the database already says what
is still to do, and each app's sweeper does it once the broker is back (the router's `sweep`,
the telephony intake's lost events).
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager

import kombu.exceptions
import redis.asyncio
import redis.exceptions
from celery import current_app
from django.db import transaction
from kombu.utils.uuid import uuid

logger = logging.getLogger(__name__)

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


_done_here = threading.local()


@contextmanager
def done_by_this_task(task_name: str) -> Iterator[list[tuple]]:
    """Within, `task_name` is not sent but listed (its arguments, once each publish would have
    happened): the running task does that work itself once its own is done, without a trip
    through the broker. The webhook's events are applied by a worker, and the call a ringing
    event queues is routed by the same task, so the caller waits for one hop, as when the
    webhook applied the event. A task that dies before doing it leaves what the sweeper redoes
    for any lost hand-off."""
    listed: list[tuple] = []
    before = getattr(_done_here, "tasks", {})
    _done_here.tasks = {**before, task_name: listed}
    try:
        yield listed
    finally:
        _done_here.tasks = before


def publish(task_name: str, *args) -> bool:
    """Send the task now; False (and a warning) when the broker cannot be reached."""
    listed = getattr(_done_here, "tasks", {}).get(task_name)
    if listed is not None:
        listed.append(args)
        return True
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


async def publish_on_loop(task_name: str, *args) -> bool:
    """`publish` for code on an event loop (the webhook's intake), without blocking it: the
    same message, pushed onto the task's queue with the loop's own asyncio Redis client.

    kombu has no asyncio transport, and its publish from the loop cost the webhook a third of
    its CPU. The task message is Celery's own (`amqp.as_task_v2`, protocol 2); only
    the envelope that kombu's Redis transport wraps around it is written here, as that
    transport writes it (kombu.transport.virtual `prepare_message` and `basic_publish`, then
    `LPUSH` onto the queue's list). tests/infrastructure/test_dispatch_on_loop.py holds it to
    what kombu publishes, field for field, and has a real worker run it."""
    app = current_app
    task_id = uuid()
    # As `send_task` builds it: no ignore_result of its own (the task's setting decides),
    # replies addressed to this app.
    headers, properties, body, _ = app.amqp.as_task_v2(
        task_id,
        task_name,
        args=args,
        reply_to=app.thread_oid,
        argsrepr=repr(args),
        kwargsrepr="{}",
        ignore_result=None,
    )
    queue = app.conf.task_default_queue
    envelope = {
        "body": base64.b64encode(json.dumps(body).encode()).decode(),
        "content-encoding": "utf-8",
        "content-type": "application/json",
        "headers": headers,
        "properties": {
            **properties,
            "delivery_mode": 2,
            "delivery_info": {"exchange": "", "routing_key": queue},
            "priority": 0,
            "body_encoding": "base64",
            "delivery_tag": uuid(),
        },
    }
    try:
        await _loop_broker().lpush(queue, json.dumps(envelope))
    except (redis.exceptions.RedisError, OSError) as unreachable:
        logger.warning("broker unreachable, %s%r not sent now: %s", task_name, args, unreachable)
        return False
    return True


# An asyncio Redis client belongs to the loop it first ran on: one per loop (a server has one
# for its life).
_loop_brokers: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, tuple[str, redis.asyncio.Redis]
] = weakref.WeakKeyDictionary()


def _loop_broker() -> redis.asyncio.Redis:
    loop = asyncio.get_running_loop()
    url = current_app.conf.broker_url
    known = _loop_brokers.get(loop)
    if known is None or known[0] != url:
        client = redis.asyncio.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=2)
        known = _loop_brokers[loop] = (url, client)
    return known[1]


def open_pool() -> bool:
    """Open one of this process's broker connections now, at start, rather than on the first
    publish (a caller's event); False when the broker is away (the first publish tries again)."""
    try:
        with _publishing_pool().acquire(block=True, timeout=2) as broker:
            broker.ensure_connection(max_retries=0)
            broker.default_channel  # noqa: B018 (the channel is opened on first use)
    except BROKER_ERRORS as unreachable:
        logger.warning("broker not reachable at start: %s", unreachable)
        return False
    return True


async def open_on_loop() -> bool:
    """`open_pool` for the running loop's own client (`publish_on_loop`)."""
    try:
        await _loop_broker().ping()
    except (redis.exceptions.RedisError, OSError) as unreachable:
        logger.warning("broker not reachable at start: %s", unreachable)
        return False
    return True


def publish_on_commit(task_name: str, *args) -> None:
    """Send the task once the current transaction commits (at once outside one)."""
    transaction.on_commit(lambda: publish(task_name, *args), robust=True)
