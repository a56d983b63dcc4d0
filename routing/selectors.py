from __future__ import annotations

from typing import Any

from routing.models import Agent


def agent_id_for_user(user: Any) -> int | None:
    if user is None or not user.is_authenticated:
        return None
    return Agent.objects.filter(user=user).values_list("id", flat=True).first()


def agent_snapshot(agent_id: int) -> dict[str, Any]:
    """The first message on an agent's socket: everything the screen needs to draw itself."""
    agent = Agent.objects.prefetch_related("queues").get(id=agent_id)
    return {
        "type": "state",
        "agent": {
            "id": agent.id,
            "display_name": agent.display_name,
            "status": agent.status,
            "status_changed_at": agent.status_changed_at.isoformat(),
            "queues": [queue.slug for queue in agent.queues.all()],
        },
        "offer": None,
        "call": None,
    }
