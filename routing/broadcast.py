"""One path from "something changed" to every screen that shows it (sent after commit)."""

from __future__ import annotations

from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

from routing.groups import SUPERVISORS_GROUP, agent_group


def _group_send(group: str, event: dict[str, Any]) -> None:
    async_to_sync(get_channel_layer().group_send)(group, event)


def send_to_agent(agent_id: int, message: dict[str, Any]) -> None:
    """Deliver `message` (see docs/sockets.md) to the agent's own socket once the change commits."""
    transaction.on_commit(
        lambda: _group_send(agent_group(agent_id), {"type": "agent.message", "message": message})
    )


def notify_supervisors(*, queue_id: int | None = None, agent_id: int | None = None) -> None:
    """Tell supervisor screens that figures changed; they coalesce bursts into a few frames."""
    transaction.on_commit(
        lambda: _group_send(
            SUPERVISORS_GROUP,
            {"type": "figures.changed", "queue_id": queue_id, "agent_id": agent_id},
        )
    )
