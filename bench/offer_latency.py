"""Offer latency: from the webhook's 202 to the `offer` message on the agent's socket.

Starts embedded PostgreSQL and Redis under `.rapport/bench-router` (unless DATABASE_URL /
REDIS_URL are set), empties and fills the database (a queue, 200 agents with sessions, callers
with 1 previous call and callers with 10,000), then runs production processes: uvicorn, a Celery
worker (prefork) and Celery beat (the router's sweeper). 200 agent sockets connect and set
themselves available; signed `call.ringing` webhooks arrive at a fixed rate; each latency is the
time from the 202 to the offer for that call on whichever socket it rings. Callers with 1
previous call and callers with 10,000 take turns in the same run. By default the offers ring
until the run ends (each of the 200 agents gets at most one: 20 calls/s for 10 s), then every
caller hangs up; with `--hang-up-after S` each caller hangs up S seconds after their offer rang
(`call.ended` withdraws it and frees the agent), so longer runs keep agents free.

    .venv/bin/python bench/offer_latency.py [--rate 20] [--seconds 10] [--worker-processes 2]
        [--hang-up-after 1]
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import sys
from datetime import UTC, datetime
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import servers  # noqa: E402
from bench.events import (  # noqa: E402
    Signer,
    callers,
    hang_up_after_offer,
    hang_up_all,
    ring,
    statuses,
)
from bench.figures import routing_figures, summary  # noqa: E402
from bench.fleet import Agents  # noqa: E402

STATE = "bench-router"
AGENTS = 200


async def phase(
    name: str,
    client: httpx.AsyncClient,
    signer: Signer,
    agents: Agents,
    *,
    rate: float,
    seconds: float,
    hang_up_after: float | None,
) -> dict:
    """`rate` calls/s for `seconds`; the latency from each call's 202 to its offer, per kind of
    caller. Every caller hangs up: `hang_up_after` seconds after their offer rang (the agent is
    free again), or all at the end."""
    after = None
    if hang_up_after is not None:
        after = functools.partial(
            hang_up_after_offer, client, signer, agents, seconds=hang_up_after
        )
    rings = await ring(client, signer, agents, name=name, rate=rate, seconds=seconds, after=after)
    results: dict = {"webhook_statuses": statuses(rings)}
    for kind in callers():
        mine = [call_id for call_id, each in rings.items() if each.kind == kind]
        latencies = [
            (agents.arrived[call_id] - rings[call_id].answered) * 1000
            for call_id in mine
            if call_id in agents.arrived
        ]
        figures = summary(latencies)
        results[kind] = {
            "calls": len(mine),
            "offered": figures["count"],
            **{key: figures[key] for key in ("p50_ms", "p99_ms", "max_ms")},
            "offer_before_202": sum(1 for latency in latencies if latency < 0),
        }
    if hang_up_after is None:
        await hang_up_all(client, signer, list(rings))
    else:
        # Withdrawn offers free their agents; give the router a moment to settle.
        await asyncio.sleep(2)
    return results


async def drive(base_url: str, secret: str, sessions: list[str], options) -> dict:
    signer = Signer(secret)
    agents = Agents(base_url)
    await agents.sign_in(sessions)
    limits = httpx.Limits(max_connections=32)
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=30) as client:
        await phase(
            "warmup", client, signer, agents, rate=options.rate, seconds=2, hang_up_after=None
        )
        results = await phase(
            "measured",
            client,
            signer,
            agents,
            rate=options.rate,
            seconds=options.seconds,
            hang_up_after=options.hang_up_after,
        )
    await agents.close()
    return results


def server_side_figures(database_url: str) -> dict:
    """From the routing decisions: the call reaching its queue to the offer being made (the
    rest of the latency is the socket push), and the router's own time per offer."""
    figures = {}
    for label in ("one_previous_call", "10000_previous_calls"):
        row = routing_figures(database_url, f"measured-{label}-%")
        figures[label] = {
            "queued_to_offer_p50_ms": row["waited_p50_ms"],
            "queued_to_offer_p99_ms": row["waited_p99_ms"],
            "routing_p50_ms": row["took_p50_ms"],
            "routing_p99_ms": row["took_p99_ms"],
        }
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=20, help="calls per second")
    parser.add_argument("--seconds", type=float, default=10, help="length of the measured run")
    parser.add_argument(
        "--hang-up-after",
        type=float,
        default=None,
        help="each caller hangs up this many seconds after their offer rang (default: all hang "
        f"up at the end; then rate x seconds must not exceed the {AGENTS} agents)",
    )
    parser.add_argument("--worker-processes", type=int, default=2, help="Celery prefork pool")
    options = parser.parse_args()

    secret = servers.new_webhook_secret()
    # The bench is one signer: production's limit per signer would cap the run.
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
            results["server_side"] = server_side_figures(urls["DATABASE_URL"])
        finally:
            servers.stop(processes)

    light, heavy = results["one_previous_call"], results["10000_previous_calls"]
    if light["p50_ms"] and heavy["p50_ms"]:
        results["history_ratio_p50"] = round(heavy["p50_ms"] / light["p50_ms"], 2)
        results["history_ratio_p99"] = round(heavy["p99_ms"] / light["p99_ms"], 2)
    results["options"] = vars(options)
    results["agents_connected"] = len(sessions)
    results["taken_at"] = datetime.now(tz=UTC).isoformat()
    print(f"{'callers':<24}{'calls':>7}{'offered':>9}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}")
    for label in ("one_previous_call", "10000_previous_calls"):
        row = results[label]
        print(
            f"{label:<24}{row['calls']:>7}{row['offered']:>9}{row['p50_ms']!s:>9}"
            f"{row['p99_ms']!s:>9}{row['max_ms']!s:>9}"
        )
    print(
        f"history ratio p50 {results.get('history_ratio_p50')}, "
        f"p99 {results.get('history_ratio_p99')}"
    )
    print("server side (from RoutingDecision):", json.dumps(results["server_side"]))
    servers.write_results("offer-latency", results)


if __name__ == "__main__":
    main()
