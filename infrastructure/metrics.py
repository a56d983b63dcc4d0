"""What Rapport counts for a contact centre's monitoring (docs/monitoring.md), in Prometheus'
terms: every metric defined here, counted where the thing happens, read by `/metrics`.

Several processes count (the web servers, each Celery pool process). With
`PROMETHEUS_MULTIPROC_DIR` set, prometheus_client writes each process's values to files there,
read when it is imported: the variable must be in the environment before the process starts,
and the directory emptied before the processes start (a dead process's counts stay in it).
`scrape` then sums every process's files; without it, the one process's own values are read.

A count of something done in a transaction is taken when it commits (`count_on_commit`): a
rolled-back routing made no offer. This module imports no model, so any layer may count.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

from django.db import transaction
from django.utils import timezone
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.registry import Collector

# From a few milliseconds (a warm router) to the seconds a caller would notice.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 0.75, 1, 2.5, 5, 10)

OFFERS = Counter(
    "rapport_offers",
    "Offers made to agents, and how each ended.",
    ["outcome"],  # made, accepted, declined, timed_out, withdrawn
)
REUNIONS = Counter(
    "rapport_reunions",
    "Routing decisions about a returning caller's last agent, by what the router decided.",
    ["outcome"],  # routing.decisions.REUNION_OUTCOMES
)
WEBHOOK_RESPONSES = Counter(
    "rapport_webhook_responses",
    "Answers to the telephony systems' requests, by endpoint and HTTP status.",
    ["endpoint", "status"],
)
SCREEN_POP_SECONDS = Histogram(
    "rapport_screen_pop_seconds",
    "From a call's first telephony event received to its first offer sent to the agent's screen.",
    buckets=LATENCY_BUCKETS,
)
EVENT_APPLY_DELAY_SECONDS = Histogram(
    "rapport_event_apply_delay_seconds",
    "From a webhook event recorded (its 202) to a worker applying it to the call.",
    buckets=LATENCY_BUCKETS,
)
SOCKETS_OPEN = Gauge(
    "rapport_sockets_open",
    "Screen sockets open, by who holds them.",
    ["kind"],  # agent, supervisor
    multiprocess_mode="livesum",
)


def count_on_commit(counter: Counter) -> None:
    """Count one when the current transaction commits (now, outside one)."""
    transaction.on_commit(counter.inc, robust=True)


def observe_since_on_commit(histogram: Histogram, started: datetime) -> None:
    """Observe the time from `started` to the current transaction's commit (now, outside one)."""
    transaction.on_commit(
        lambda: histogram.observe(max(0.0, (timezone.now() - started).total_seconds())),
        robust=True,
    )


def multiprocess_directory() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def scrape(collectors: Iterable[Collector] = ()) -> tuple[bytes, str]:
    """The text `/metrics` answers, and its content type: every process's metrics (or this
    one's), and those `collectors` read at scrape time."""
    registry = CollectorRegistry(auto_describe=False)
    if multiprocess_directory():
        _forget_processes_gone(multiprocess_directory())
        multiprocess.MultiProcessCollector(registry)
    else:
        registry.register(_ThisProcess())
    for collector in collectors:
        registry.register(collector)
    return generate_latest(registry), CONTENT_TYPE_LATEST


def process_exited(pid: int | None = None) -> None:
    """A process that counted is stopping: its live gauges (sockets open) no longer count.
    Its counters and histograms stay in the directory, so totals do not fall."""
    if multiprocess_directory():
        multiprocess.mark_process_dead(pid or os.getpid())


def _forget_processes_gone(directory: str) -> None:
    """A process killed outright (`kill -9`, the OOM killer) never said it stopped: its live
    gauges would count its sockets for ever. Each scrape forgets the processes no longer
    running (the directory is one machine's, so its process ids are this machine's)."""
    for path in Path(directory).glob("gauge_live*_*.db"):
        pid = path.stem.rsplit("_", 1)[-1]
        if pid.isdigit() and not _running(int(pid)):
            multiprocess.mark_process_dead(int(pid), directory)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class _ThisProcess(Collector):
    """The default registry's metrics (this module's, and the process's own) in a scrape."""

    def collect(self):
        return REGISTRY.collect()
