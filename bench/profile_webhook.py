"""The webhook's own cost per event, in one process: statements, CPU and wall per event type,
for each of its two halves.

Uses the database `bench/goals.py` filled (`.rapport/bench-goals`; run `goals.py --only webhook
--quick` once first): calls ring, are answered by one of its webhook agents (`90NN`, a queue of
their own) and end. Each event is a signed POST through Django's test client (the view: the
signature, the statement that records it, the task published to a queue nobody reads), then
what the worker's task does with it (`telephony.applying.apply_and_route`: the event applied,
the call routed, the socket messages sent to the real Redis). Prints per event type the
statements (BEGIN and COMMIT included), CPU ms and wall ms p50 of each half, the statements of
the last one, and with `--profile` a cProfile of the chosen event types (both halves).

    .venv/bin/python bench/profile_webhook.py [--calls 150] [--profile answered,ended] [--top 40]
"""

from __future__ import annotations

import argparse
import cProfile
import functools
import json
import pstats
import secrets
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import servers  # noqa: E402
from bench.events import EVENTS_PATH, WEBHOOK_QUEUE, Signer, call_in_full  # noqa: E402

KINDS = ("ringing", "answered", "ended")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=150)
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--sort", default="cumulative")
    parser.add_argument(
        "--profile", default="", help="event types to profile, comma-separated (e.g. answered)"
    )
    parser.add_argument(
        "--rate-limit",
        default="100000/s",
        help="TELEPHONY_RATE_LIMIT (default: counted, never refusing, as in goals.py; '' is off)",
    )
    parser.add_argument(
        "--callers", default="", help="with --profile: who calls the functions matching this"
    )
    parser.add_argument("--show-sql", action="store_true", help="the last event's statements")
    options = parser.parse_args()
    secret = servers.new_webhook_secret()
    # goals.py's database; the tasks and socket messages go to a queue and prefix nobody reads.
    with servers.django_in_this_process(
        "bench-goals",
        name="profile-webhook",
        TELEPHONY_WEBHOOK_SECRET=secret,
        TELEPHONY_RATE_LIMIT=options.rate_limit,
    ):
        run(options, Signer(secret))


def _signed(signer: Signer, payload: dict) -> tuple[str, dict[str, str]]:
    """The body, and its signature as the test client takes headers."""
    body = json.dumps(payload)
    headers = signer.headers(body)
    return body, {
        "HTTP_" + name.upper().replace("-", "_"): value for name, value in headers.items()
    }


def run(options, signer: Signer) -> None:
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from routing.models import Agent
    from telephony import applying
    from telephony.models import CallEvent

    # The webhook agents start free, as after goals.py's idle phase.
    Agent.objects.filter(telephony_identity__startswith="90").update(
        status="available", not_ready_reason=""
    )
    client = Client()
    run_id = secrets.token_hex(3)
    profiled = {kind for kind in options.profile.split(",") if kind}
    profiler = cProfile.Profile(time.process_time)
    halves = ("view", "worker")
    figures = {
        (kind, half): {"statements": [], "cpu": [], "wall": []} for kind in KINDS for half in halves
    }
    last: dict[tuple[str, str], list] = {}
    warm_up = 5
    for number in range(options.calls + warm_up):
        call_id = f"profile-webhook-{run_id}-{number}"
        for kind, payload in zip(
            KINDS, call_in_full(call_id, number, queue=WEBHOOK_QUEUE), strict=True
        ):
            body, headers = _signed(signer, payload)
            measured = number >= warm_up
            profiling = kind in profiled and measured
            for half in halves:
                if half == "view":
                    work = functools.partial(
                        client.generic,
                        "POST",
                        EVENTS_PATH,
                        body,
                        content_type="application/json",
                        secure=True,
                        **headers,
                    )
                else:
                    event_id = CallEvent.objects.values_list("id", flat=True).get(
                        webhook_id=headers["HTTP_WEBHOOK_ID"]
                    )
                    work = functools.partial(applying.apply_and_route, event_id)
                with CaptureQueriesContext(connection) as queries:
                    started, started_cpu = time.perf_counter(), time.process_time()
                    if profiling:
                        profiler.enable()
                    result = work()
                    if profiling:
                        profiler.disable()
                    wall = (time.perf_counter() - started) * 1000
                    cpu = (time.process_time() - started_cpu) * 1000
                if half == "view":
                    assert result.status_code == 202, (kind, result.status_code, result.content)
                if not measured:
                    continue
                figures[kind, half]["statements"].append(len(queries.captured_queries))
                figures[kind, half]["cpu"].append(cpu)
                figures[kind, half]["wall"].append(wall)
                last[kind, half] = queries.captured_queries
    print(f"{options.calls} calls, {len(KINDS)} events each")
    print(f"{'event':10} {'half':7} {'statements':>10} {'CPU ms p50':>11} {'wall ms p50':>12}")
    for kind in KINDS:
        for half in halves:
            data = figures[kind, half]
            print(
                f"{kind:10} {half:7} {statistics.median(data['statements']):>10} "
                f"{statistics.median(data['cpu']):>11.2f} {statistics.median(data['wall']):>12.2f}"
            )
    everything = [cpu for key, data in figures.items() for cpu in data["cpu"]]
    print(
        f"all events, both halves: CPU ms mean {statistics.mean(everything) * len(halves):.2f}"
        + (" (profiled events inflated)" if profiled else "")
    )
    if options.show_sql:
        for kind in KINDS:
            for half in halves:
                print(f"\n{kind}, {half}: {len(last[kind, half])} statements")
                for query in last[kind, half]:
                    print(f"  {query['time']}s  {' '.join(query['sql'].split())[:160]}")
    if profiled:
        stats = pstats.Stats(profiler).sort_stats(options.sort)
        if options.callers:
            stats.print_callers(options.callers)
        else:
            stats.print_stats(options.top)


if __name__ == "__main__":
    main()
