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

from routing.groups import SUPERVISORS_GROUP, agent_group, session_group

logger = logging.getLogger(__name__)

_sender_lock = threading.Lock()
_sender: tuple[int, asyncio.AbstractEventLoop] | None = None


def _sender_loop() -> asyncio.AbstractEventLoop:
    """This process's event loop for sending, on a thread of its own. async_to_sync would open
    a loop and a new Redis connection for every message (about 13 ms each); this one keeps its
    connections. Made again after a fork (Celery's prefork pool), whose child has no thread."""
    global _sender
    with _sender_lock:
        if _sender is None or _sender[0] != os.getpid():
            loop = asyncio.new_event_loop()
            threading.Thread(
                target=loop.run_forever, name="channel-layer-send", daemon=True
            ).start()
            _sender = (os.getpid(), loop)
        return _sender[1]


def _send_now(group: str, event: dict[str, Any]) -> None:
    send = get_channel_layer().group_send(group, event)
    asyncio.run_coroutine_threadsafe(send, _sender_loop()).result(timeout=10)


def _group_send(group: str, event: dict[str, Any]) -> None:
    """Runs after the change committed: a screen message that cannot go out is logged, never
    raised into the request or task that made the change (screens heal from `state` on their
    next connect). A pooled connection that a Redis restart closed gets one more try."""
    try:
        try:
            _send_now(group, event)
        except redis.exceptions.ConnectionError:
            _send_now(group, event)
    except Exception as failed:
        logger.warning(
            "socket message to %s not sent: %s: %s", group, type(failed).__name__, failed
        )


def send_to_agent(agent_id: int, message: dict[str, Any]) -> None:
    """Deliver `message` (see docs/sockets.md) to the agent's own socket once the change commits."""
    transaction.on_commit(
        lambda: _group_send(agent_group(agent_id), {"type": "agent.message", "message": message}),
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
