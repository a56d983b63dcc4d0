"""The floor now, for the monitoring's scraper: callers waiting and the longest wait per queue,
agents by status. Read from PostgreSQL at scrape time, so the figures are right whichever
process changed them, counted as the wall counts them (`supervisor.floor`: a caller waits in
ringing, queued or offered, since `figures.wait_start`). Three statements, however many queues,
calls or agents; the waiting calls are found by their state (its index), never by reading
every call a queue ever had."""

from __future__ import annotations

from django.db.models import Count, Min
from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from routing.models import Agent, Call, Queue
from routing.states import WAITING_STATES, AgentStatus
from supervisor.figures import wait_start


class FloorCollector(Collector):
    def collect(self):
        now = timezone.now()
        waiting = GaugeMetricFamily(
            "rapport_callers_waiting", "Callers waiting now, per queue.", labels=["queue"]
        )
        longest = GaugeMetricFamily(
            "rapport_longest_wait_seconds",
            "How long the longest-waiting caller has waited, per queue (0: nobody waits).",
            labels=["queue"],
        )
        per_queue = {
            queue_id: (count, since)
            for queue_id, count, since in Call.objects.filter(
                state__in=WAITING_STATES, queue__isnull=False
            )
            .order_by()
            .values("queue_id")
            .annotate(count=Count("id"), since=Min(wait_start()))
            .values_list("queue_id", "count", "since")
        }
        for queue_id, slug in Queue.objects.order_by("slug").values_list("id", "slug"):
            count, since = per_queue.get(queue_id, (0, None))
            waiting.add_metric([slug], count)
            longest.add_metric([slug], max(0.0, (now - since).total_seconds()) if since else 0.0)
        agents = GaugeMetricFamily(
            "rapport_agents", "Agents by status (every status, zeros too).", labels=["status"]
        )
        by_status = dict.fromkeys(AgentStatus.values, 0)
        for status, count in Agent.objects.order_by().values_list("status").annotate(Count("id")):
            by_status[status] = count
        for status, count in by_status.items():
            agents.add_metric([status], count)
        return [waiting, longest, agents]
