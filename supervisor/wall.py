"""Everything the supervisor's wall shows, and one queue's figures, put together from the
floor, the day and the reunion tally."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

from django.utils import timezone

from routing.models import Queue
from routing.states import CallState
from supervisor import floor, reunion, today


def figures(now: datetime | None = None, *, caller_names: bool = False) -> dict[str, Any]:
    """Everything the supervisor screen shows, in one plain dict (the socket frame's body).
    Callers are named only with `caller_names`, by a screen that records who it named
    (`floor.callers_named`); a script reading the JSON figures gets figures, not people."""
    now = now or timezone.now()
    queues = list(
        Queue.objects.order_by("name", "id").values("id", "slug", "name", "service_level_seconds")
    )
    waiting = floor.waiting_calls(now)
    day = today.today_by_queue(now)
    callbacks = today.callbacks_by_queue(now)
    codes = today.wrap_up_codes_by_queue(now)
    reunions = reunion.reunion_by_queue(now)
    agent_counts = floor.agents_by_queue()
    slug_of = {queue["id"]: queue["slug"] for queue in queues}
    waiting_by_queue: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for call in waiting:
        call["queue"] = slug_of.get(call.pop("queue_id"))
        waiting_by_queue[call["queue"]].append(call)

    queue_figures = [
        _queue_figures(
            queue,
            waiting=waiting_by_queue.get(queue["slug"], []),
            day=day.get(queue["id"]) or today.day_figures(),
            wrap_up_codes=codes.get(queue["id"]) or today.empty_wrap_up_codes(),
            reunion=reunions.get(queue["id"], reunion.Tally()),
            agents=agent_counts.get(queue["id"]) or floor.empty_agent_counts(),
            callbacks=callbacks.get(queue["id"]) or today.callback_figures(now=now),
        )
        for queue in queues
    ]
    agents = floor.agent_rows(now, caller_names=caller_names)
    return {
        "generated_at": now.isoformat(),
        "totals": {
            "waiting": len(waiting),
            "longest_waiting_since": waiting[0]["waiting_since"] if waiting else None,
            "offered": sum(1 for call in waiting if call["state"] == CallState.OFFERED),
            "today": today.sum_day_figures([figures["today"] for figures in queue_figures]),
            "reunion": sum(reunions.values(), reunion.Tally()).day_figures(),
            "not_ready_today": floor.not_ready_totals(agents),
            "callbacks": _callback_totals([figures["callbacks"] for figures in queue_figures], now),
        },
        "queues": queue_figures,
        "agents": agents,
        "abandoned": today.abandoned_today(now, caller_names=caller_names),
        "series": today.day_series(now),
    }


def queue_stats(queue: Queue, now: datetime | None = None) -> dict[str, Any]:
    """One queue's figures (the `/api/queues/<slug>/stats/` body), counted as the wall's."""
    now = now or timezone.now()
    waiting = floor.waiting_calls(now, queue_id=queue.id)
    for call in waiting:
        call["queue"] = queue.slug
        del call["queue_id"]
    figures = _queue_figures(
        {
            "id": queue.id,
            "slug": queue.slug,
            "name": queue.name,
            "service_level_seconds": queue.service_level_seconds,
        },
        waiting=waiting,
        day=today.today_by_queue(now, queue_id=queue.id).get(queue.id) or today.day_figures(),
        wrap_up_codes=today.wrap_up_codes_by_queue(now, queue_id=queue.id).get(queue.id)
        or today.empty_wrap_up_codes(),
        reunion=reunion.reunion_by_queue(now, queue_id=queue.id).get(queue.id, reunion.Tally()),
        agents=floor.agents_by_queue(queue_id=queue.id).get(queue.id) or floor.empty_agent_counts(),
        callbacks=today.callbacks_by_queue(now, queue_id=queue.id).get(queue.id)
        or today.callback_figures(now=now),
    )
    figures["generated_at"] = now.isoformat()
    figures["series"] = today.day_series(now, queue_id=queue.id)
    return figures


def _queue_figures(
    queue: dict[str, Any],
    *,
    waiting: list[dict[str, Any]],
    day: dict[str, Any],
    wrap_up_codes: dict[str, Any],
    reunion: reunion.Tally,
    agents: dict[str, int],
    callbacks: dict[str, Any],
) -> dict[str, Any]:
    return {
        "id": queue["id"],
        "slug": queue["slug"],
        "name": queue["name"],
        "service_level_seconds": queue["service_level_seconds"],
        "waiting": len(waiting),
        "longest_waiting_since": waiting[0]["waiting_since"] if waiting else None,
        "offered": sum(1 for call in waiting if call["state"] == CallState.OFFERED),
        "waiting_calls": waiting,
        "agents": agents,
        "today": {**day, "wrap_up_codes": wrap_up_codes},
        "reunion": reunion.day_figures(),
        "callbacks": callbacks,
    }


def _callback_totals(per_queue: list[dict[str, Any]], now: datetime) -> dict[str, Any]:
    oldest = min((f["oldest_since"] for f in per_queue if f["oldest_since"]), default=None)
    return today.callback_figures(
        pending=sum(f["pending"] for f in per_queue),
        oldest=datetime.fromisoformat(oldest) if oldest else None,
        not_reached=sum(f["not_reached_today"] for f in per_queue),
        now=now,
    )
