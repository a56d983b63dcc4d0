"""The first calls after a start, and the first after a quiet spell: does the morning's first
caller pop as fast as the hundredth?

Starts embedded PostgreSQL and Redis under `.rapport/bench-first-calls` (unless DATABASE_URL /
REDIS_URL are set), empties and fills the database (goals.py's queue and callers, 200 agents
with sessions), then starts production's processes afresh: uvicorn, a Celery worker (prefork)
and beat. As soon as the server answers its health check (a load balancer's first look), the
agents' sockets connect and set themselves available, and signed `call.ringing` webhooks
arrive at `--rate` calls/s for `--seconds`, with no warm-up: every call counts, the first one
included. Each caller hangs up a second after their offer, so agents are free again. Then
nothing happens for `--idle` seconds (the sockets stay open, as a floor's do at lunch), and
`--after-idle` calls arrive one second apart.

Latency: the POST leaving the bench → the `offer` for that call on an agent's socket (what the
agent feels, the phone system's send included).

    .venv/bin/python bench/first_calls.py [--rate 20] [--seconds 10] [--idle 600]
        [--after-idle 3] [--worker-processes 2]

Goals (issue 26): p99 ≤ 100 ms with the first calls counted; the first call ≤ 2× the median;
the first call after the quiet spell ≤ 2× the median.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import servers  # noqa: E402
from bench.events import Signer, hang_up_after_offer, ring  # noqa: E402
from bench.figures import stages_of_calls, summary  # noqa: E402
from bench.fleet import Agents  # noqa: E402

STATE = "bench-first-calls"
AGENTS = 200


def in_order(rings: dict, agents: Agents) -> list[tuple[str, float | None]]:
    """Each call's id and its POST sent → its offer, in ms, in the order the calls were sent;
    None for a call never offered."""
    ordered = sorted(rings.items(), key=lambda item: item[1].sent)
    return [
        (
            call_id,
            (agents.arrived[call_id] - each.sent) * 1000 if call_id in agents.arrived else None,
        )
        for call_id, each in ordered
    ]


async def drive(base_url: str, secret: str, sessions: list[str], options) -> dict:
    signer = Signer(secret)
    agents = Agents(base_url)
    started = time.perf_counter()
    await agents.sign_in(sessions)
    signed_in_s = time.perf_counter() - started
    limits = httpx.Limits(max_connections=32)
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=30) as client:
        # The bench's own client, its first request's imports and connection, is not Rapport.
        await client.get("/api/health/")
        hang_up = functools.partial(hang_up_after_offer, client, signer, agents, seconds=1)
        rings = await ring(
            client,
            signer,
            agents,
            name="start",
            rate=options.rate,
            seconds=options.seconds,
            after=hang_up,
        )
        after_start = in_order(rings, agents)
        await asyncio.sleep(3)
        print(f"quiet for {options.idle:g} s …", flush=True)
        await asyncio.sleep(options.idle)
        rings = await ring(
            client,
            signer,
            agents,
            name="after-idle",
            rate=1,
            seconds=options.after_idle,
            after=hang_up,
        )
        after_idle = in_order(rings, agents)
        await asyncio.sleep(2)
    await agents.close()
    return {
        "sockets_signed_in_s": round(signed_in_s, 2),
        "after_start_ms": [latency for _, latency in after_start],
        "after_idle_ms": [latency for _, latency in after_idle],
        "first_calls": [call_id for call_id, _ in after_start[:5]],
        "first_calls_after_idle": [call_id for call_id, _ in after_idle],
    }


def judged(results: dict) -> dict:
    start = [latency for latency in results["after_start_ms"] if latency is not None]
    idle = [latency for latency in results["after_idle_ms"] if latency is not None]
    figures = summary(start)
    median = statistics.median(start) if start else None
    first = results["after_start_ms"][0]
    first_after_idle = results["after_idle_ms"][0] if results["after_idle_ms"] else None
    return {
        "after_start": {
            **figures,
            "calls": len(results["after_start_ms"]),
            "first_five_ms": [None if x is None else round(x, 1) for x in start[:5]],
        },
        "first_call_ms": None if first is None else round(first, 1),
        "first_call_vs_median": None if first is None or not median else round(first / median, 2),
        "after_idle_ms": [round(x, 1) for x in idle],
        "first_after_idle_vs_median": (
            None if first_after_idle is None or not median else round(first_after_idle / median, 2)
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=20, help="calls per second after start")
    parser.add_argument("--seconds", type=float, default=10, help="how long they arrive")
    parser.add_argument("--idle", type=float, default=600, help="seconds of quiet before more")
    parser.add_argument("--after-idle", type=int, default=3, help="calls after the quiet, 1/s")
    parser.add_argument("--worker-processes", type=int, default=2, help="Celery prefork pool")
    options = parser.parse_args()

    secret = servers.new_webhook_secret()
    settings = {"TELEPHONY_WEBHOOK_SECRET": secret, "TELEPHONY_RATE_LIMIT": ""}
    with servers.migrated(STATE, **settings) as (urls, env):
        sessions = servers.fill(env, "--team", str(AGENTS))["sessions"]
        port, base_url = servers.local_port()
        processes = servers.start_rapport(
            env, port, state=STATE, worker_processes=options.worker_processes
        )
        try:
            servers.wait_until_answering(base_url, processes[0])
            results = asyncio.run(drive(base_url, secret, sessions, options))
            results["stages_first_calls"] = stages_of_calls(
                urls["DATABASE_URL"], results.pop("first_calls")
            )
            results["stages_after_idle"] = stages_of_calls(
                urls["DATABASE_URL"], results.pop("first_calls_after_idle")
            )
        finally:
            servers.stop(processes)

    results.update(judged(results))
    results["options"] = vars(options)
    results["taken_at"] = datetime.now(tz=UTC).isoformat()
    start = results["after_start"]
    print(
        f"after start: {start['calls']} calls, {start['count']} offered; p50 {start['p50_ms']} ms, "
        f"p99 {start['p99_ms']} ms, max {start['max_ms']} ms"
    )
    print(f"first five: {start['first_five_ms']} ms")
    print(
        f"first call {results['first_call_ms']} ms = {results['first_call_vs_median']}× the median"
    )
    print(
        f"after {options.idle:g} s quiet: {results['after_idle_ms']} ms; the first = "
        f"{results['first_after_idle_vs_median']}× the median"
    )
    print("stages of the first five (recorded→queued, queued→offer, router):")
    for stages in results["stages_first_calls"]:
        print("   ", stages)
    print("stages after the quiet:")
    for stages in results["stages_after_idle"]:
        print("   ", stages)
    servers.write_results("first-calls", results)


if __name__ == "__main__":
    main()
