"""The bench's arithmetic: percentiles of latencies, CPU time of processes, the router's figures."""

from __future__ import annotations

import contextlib
import statistics
from pathlib import Path

import psutil
import psycopg


def percentile(ordered: list[float], percent: float) -> float:
    """Of values already sorted, the one at rank `round(percent% of them + 0.5)`: the nearest
    rank, except that `round` goes half to even, so of exactly 100 values the p99 is the largest.
    Every recorded figure was computed so; keep it, and they stay comparable."""
    index = round(percent / 100 * len(ordered) + 0.5) - 1
    return ordered[max(0, min(len(ordered) - 1, index))]


def summary(latencies: list[float], *, digits: int = 1) -> dict:
    """Count, p50, p99 and max, in ms rounded to `digits`."""
    ordered = sorted(latencies)
    if not ordered:
        return {"count": 0, "p50_ms": None, "p99_ms": None, "max_ms": None}
    return {
        "count": len(ordered),
        "p50_ms": round(statistics.median(ordered), digits),
        "p99_ms": round(percentile(ordered, 99), digits),
        "max_ms": round(ordered[-1], digits),
    }


def cpu_seconds(pids: list[int]) -> float:
    """User and system CPU seconds of these processes and all their children, so far."""
    total = 0.0
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            process = psutil.Process(pid)
            for each in [process, *process.children(recursive=True)]:
                with contextlib.suppress(psutil.Error):
                    times = each.cpu_times()
                    total += times.user + times.system
    return total


def service_pids(state: Path, names: tuple[str, ...] = ("postgres", "redis")) -> list[int]:
    """The processes whose command line names the data folder of one of the bench's embedded
    services (`state/<name>`): PostgreSQL's postmaster (`cpu_seconds` adds its backends, its
    children). redis-server renames itself (`redis-server 127.0.0.1:PORT`), so it is not found:
    a "PostgreSQL + Redis" figure is PostgreSQL's."""
    folders = [str(state / name) for name in names]
    found = []
    for process in psutil.process_iter(["pid", "cmdline"]):
        cmdline = " ".join(process.info["cmdline"] or [])
        if any(folder in cmdline for folder in folders):
            found.append(process.info["pid"])
    return found


def routing_figures(database_url: str, call_ids_like: str) -> dict:
    """From the routing decisions that made an offer, for calls whose id is LIKE `call_ids_like`:
    the call reaching its queue to the offer being made (`caller_waited_ms`) and the router's own
    time (`took_ms`), p50 and p99, and how many decisions."""
    with psycopg.connect(database_url) as connection:
        row = connection.execute(
            """
            SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY d.caller_waited_ms),
                   percentile_cont(0.99) WITHIN GROUP (ORDER BY d.caller_waited_ms),
                   percentile_cont(0.5) WITHIN GROUP (ORDER BY d.took_ms),
                   percentile_cont(0.99) WITHIN GROUP (ORDER BY d.took_ms),
                   count(*)
            FROM routing_routingdecision d JOIN routing_call c ON c.id = d.call_id
            WHERE d.offer_id IS NOT NULL AND c.telephony_call_id LIKE %s
            """,
            [call_ids_like],
        ).fetchone()
    names = ("waited_p50_ms", "waited_p99_ms", "took_p50_ms", "took_p99_ms", "decisions")
    return dict(zip(names, row, strict=True))


def stages_of_calls(database_url: str, call_ids: list[str]) -> list[dict]:
    """Where each call's screen-pop went, from the server's own clocks (one machine): the event
    recorded (the intake's `received_at`) → the call queued (the worker applied it) → the
    offer made, and the router's `took_ms`, in ms, in the order of `call_ids`."""
    with psycopg.connect(database_url) as connection:
        rows = connection.execute(
            """
            SELECT c.telephony_call_id,
                   extract(epoch FROM c.queued_at - e.received_at) * 1000,
                   extract(epoch FROM o.offered_at - c.queued_at) * 1000,
                   d.took_ms
            FROM routing_call c
            JOIN telephony_callevent e ON e.call_id = c.id AND e.type = 'call.ringing'
            LEFT JOIN routing_offer o ON o.call_id = c.id
            LEFT JOIN routing_routingdecision d ON d.offer_id = o.id
            WHERE c.telephony_call_id = ANY(%s)
            """,
            [call_ids],
        ).fetchall()
    found = {
        row[0]: {
            "recorded_to_queued_ms": None if row[1] is None else round(float(row[1]), 1),
            "queued_to_offer_ms": None if row[2] is None else round(float(row[2]), 1),
            "router_took_ms": row[3],
        }
        for row in rows
    }
    return [found.get(call_id, {}) for call_id in call_ids]
