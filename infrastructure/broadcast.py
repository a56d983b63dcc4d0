"""One path from "something changed" to every screen that shows it (sent after commit)."""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from typing import Any

import redis.exceptions
from channels.layers import get_channel_layer
from django.db import transaction

from infrastructure.groups import SUPERVISORS_GROUP, agent_group, session_group

logger = logging.getLogger(__name__)

_sender_lock = threading.Lock()
_sending: tuple[int, asyncio.AbstractEventLoop, asyncio.Queue] | None = None


def _sender() -> tuple[asyncio.AbstractEventLoop, asyncio.Queue]:
    """This process's sending thread: an event loop that sends queued messages one after the
    other, in the order they were queued, over connections it keeps. async_to_sync would open
    a loop and a new Redis connection for every message (about 13 ms each). Made again after a
    fork (Celery's prefork pool), whose child has no thread."""
    global _sending
    with _sender_lock:
        if _sending is None or _sending[0] != os.getpid():
            loop = asyncio.new_event_loop()
            queue: asyncio.Queue = asyncio.Queue()
            loop.create_task(_send_in_order(queue))
            threading.Thread(
                target=loop.run_forever, name="channel-layer-send", daemon=True
            ).start()
            _sending = (os.getpid(), loop, queue)
        return _sending[1], _sending[2]


def _group_send(group: str, event: dict[str, Any]) -> None:
    """Runs after the change committed: hands the message to the sending thread and returns.
    The request or task that made the change does not wait for Redis (three round trips a
    message, each a thread switch and a GIL wait: the telephony webhook waited for three
    messages on every answered call); messages still go out in the order they were queued."""
    loop, queue = _sender()
    loop.call_soon_threadsafe(queue.put_nowait, (group, event))


async def _send_in_order(queue: asyncio.Queue) -> None:
    while True:
        item = await queue.get()
        if isinstance(item, threading.Event):
            item.set()
            continue
        await _send(*item)


async def _send(group: str, event: dict[str, Any]) -> None:
    """A screen message that cannot go out is logged, never raised (screens heal from `state`
    on their next connect). A pooled connection that a Redis restart closed gets one more try."""
    try:
        try:
            await get_channel_layer().group_send(group, event)
        except redis.exceptions.ConnectionError:
            await get_channel_layer().group_send(group, event)
    except Exception as failed:
        logger.warning(
            "socket message to %s not sent: %s: %s", group, type(failed).__name__, failed
        )


def open_connections(timeout: float = 5) -> bool:
    """Start this process's sending thread and open its Redis connection now, at start, rather
    than on the first screen message: the first caller's screen-pop would wait for both. False
    when Redis did not answer in `timeout` seconds (the first message tries again)."""
    loop, _ = _sender()

    async def ping() -> None:
        layer = get_channel_layer()
        await layer.connection(0).ping()

    try:
        asyncio.run_coroutine_threadsafe(ping(), loop).result(timeout)
    except Exception as failed:
        logger.warning(
            "channel layer not reachable at start: %s: %s", type(failed).__name__, failed
        )
        return False
    return True


def flush(timeout: float = 10) -> bool:
    """Wait until every message this process queued so far went out (or was given up on):
    for a process about to exit. False when `timeout` seconds were not enough."""
    loop, queue = _sender()
    reached = threading.Event()
    loop.call_soon_threadsafe(queue.put_nowait, reached)
    return reached.wait(timeout)


def send_to_agent(agent_id: int, message: dict[str, Any]) -> None:
    """Deliver `message` (see docs/sockets.md) to the agent's own socket once the change commits."""
    transaction.on_commit(
        lambda: _group_send(agent_group(agent_id), {"type": "agent.message", "message": message}),
        robust=True,
    )


def ask_agent_screens_about_offer(*, agent_id: int, offer_id: int) -> None:
    """Ask the agent's sockets whether they showed offer `offer_id` (routing.unseen_offers); one
    that did not sends the agent's state again."""
    transaction.on_commit(
        lambda: _group_send(agent_group(agent_id), {"type": "offer.check", "offer_id": offer_id}),
        robust=True,
    )


def notify_supervisors(*, queue_id: int | None = None, agent_id: int | None = None) -> None:
    """Tell supervisor screens that figures changed; they coalesce bursts into a few frames."""
    transaction.on_commit(
        lambda: _group_send(
            SUPERVISORS_GROUP,
            {"type": "figures.changed", "queue_id": queue_id, "agent_id": agent_id},
        ),
        robust=True,
    )


def close_sockets_of_session(session_key: str) -> None:
    """Close every socket opened with this login session (it is ending: the person logged
    out), before anything more about a customer reaches it."""
    transaction.on_commit(
        lambda: _group_send(session_group(session_key), {"type": "session.ended"}), robust=True
    )


def sockets_close_on_logout(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    """Receiver of Django's `user_logged_out`: the only hook into its logout view."""
    session_key = getattr(getattr(request, "session", None), "session_key", None)
    if session_key:
        close_sockets_of_session(session_key)
