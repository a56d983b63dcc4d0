"""The router's own cost per offer, in one process: cProfile and query counts of `route_call`.

Uses the database `bench/goals.py` filled (`.rapport/bench-goals`; run goals.py once first):
queued calls from its callers (1 and 10,000 previous calls, taking turns) are routed one after
the other to its 1,000 agents, each under the profiler, with the queries counted. Messages go to
the real Redis, as in the worker; no worker runs, so nothing consumes the published tasks.

    .venv/bin/python bench/profile_router.py [--calls 100] [--top 40] [--sort tottime]
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import secrets
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.events import QUEUE_NUMBER, callers  # noqa: E402
from bench.servers import django_in_this_process  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=100)
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--sort", default="cumulative")
    parser.add_argument(
        "--no-profile", action="store_true", help="time only: CPU and wall per route_call"
    )
    parser.add_argument("--full-sql", action="store_true", help="the last routing's statements")
    options = parser.parse_args()
    # goals.py's database; the tasks and socket messages go to a queue and prefix nobody reads.
    with django_in_this_process("bench-goals", name="profile-router"):
        run(options)


def run(options) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from customers.models import PhoneNumber
    from routing import router
    from routing.models import Agent, Call, Offer, Queue, RoutingDecision

    queue = Queue.objects.get(slug="loyalty")
    # A clean floor: nothing ringing, every agent of the queue free.
    Offer.objects.filter(state="offered").update(state="withdrawn", responded_at=timezone.now())
    Call.objects.exclude(state__in=["ended", "abandoned"]).update(state="ended", agent=None)
    Agent.objects.filter(queues=queue).update(status="available")
    numbers = [number for kind in callers().values() for number in kind]
    customer_of = dict(
        PhoneNumber.objects.filter(number__in=numbers).values_list("number", "customer_id")
    )
    run_id = secrets.token_hex(3)
    now = timezone.now()
    calls = Call.objects.bulk_create(
        Call(
            telephony_call_id=f"profile-{run_id}-{n}",
            from_e164=numbers[n % len(numbers)],
            to_number=QUEUE_NUMBER,
            queue=queue,
            customer_id=customer_of[numbers[n % len(numbers)]],
            state="queued",
            queued_at=now,
        )
        for n in range(options.calls + 5)
    )
    for call in calls[:5]:  # warm caches, connections
        router.route_call(call.id)
    profiler = cProfile.Profile()
    counts, wall, cpu = [], [], []
    for call in calls[5:]:
        with CaptureQueriesContext(connection) as queries:
            started, started_cpu = time.perf_counter(), time.process_time()
            if not options.no_profile:
                profiler.enable()
            router.route_call(call.id)
            if not options.no_profile:
                profiler.disable()
            wall.append((time.perf_counter() - started) * 1000)
            cpu.append((time.process_time() - started_cpu) * 1000)
        counts.append(len(queries.captured_queries))
    last = queries.captured_queries
    print(f"queries per route_call: {statistics.median(counts)} (last: {len(last)})")
    for query in last:
        print(f"  {query['time']}s  {' '.join(query['sql'].split())[:150]}")
    if options.full_sql:
        for query in last:
            print("\n", query["sql"])
    print(
        f"wall ms p50 {statistics.median(wall):.1f}; CPU ms p50 {statistics.median(cpu):.1f}"
        f" mean {statistics.mean(cpu):.1f}"
        + ("" if options.no_profile else " (profiled: inflated)")
    )
    took = sorted(
        RoutingDecision.objects.filter(
            call__telephony_call_id__startswith=f"profile-{run_id}-", offer__isnull=False
        ).values_list("took_ms", flat=True)
    )
    print(f"took_ms p50 {statistics.median(took)} p99-ish max {took[-1]} ({len(took)} offers)")
    if not options.no_profile:
        pstats.Stats(profiler).sort_stats(options.sort).print_stats(options.top)


if __name__ == "__main__":
    main()
