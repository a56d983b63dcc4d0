"""Telephony webhook benchmark: the production server, real PostgreSQL and Redis, signed events.

Starts embedded PostgreSQL and Redis under `.rapport/bench` (unless DATABASE_URL / REDIS_URL are
set), migrates, starts `uvicorn rapport.asgi:application` (no access log) and drives it from this
process with httpx:

  1. max throughput: as many requests as `--concurrency` connections can push for `--seconds`;
  2. latency at a fixed rate: `--rate` requests/s for `--rate-seconds` (p50/p99 measured from
     each request's scheduled start, so a stall is not hidden by the sender waiting).

Both for signed webhook events (each call rings, is answered, ends: the full write path) and for
`GET /api/telephony/ping/`, a trivial Django view on the same server (no database, no auth),
served by the bench's URLs (`bench/urls.py`).

    .venv/bin/python bench/webhook_bench.py [--workers 2] [--seconds 10] [--rate 100]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import PING_PATH, servers  # noqa: E402
from bench.events import EVENTS_PATH, Signer, WholeCalls  # noqa: E402
from bench.figures import cpu_seconds, service_pids, summary  # noqa: E402
from bench.load import flat_out, paced  # noqa: E402

STATE = "bench"
Request = tuple[bytes, dict[str, str]]


async def _one(client: httpx.AsyncClient, path: str, request: Request | None) -> int:
    """POST `request` to `path`, or GET `path` when there is none; the status."""
    if request is None:
        response = await client.get(path)
    else:
        body, headers = request
        response = await client.post(path, content=body, headers=headers)
    return response.status_code


async def max_throughput(
    base_url: str,
    path: str,
    requests: list[Request] | None,
    concurrency: int,
    seconds: float,
    cpu: ServerCpu | None = None,
) -> dict:
    """`concurrency` connections as fast as they can for `seconds`: GETs, or `requests` POSTed
    until there are none left."""
    position = iter(requests or ())

    async def send() -> int | None:
        request = next(position, None)
        if requests is not None and request is None:
            return None
        return await _one(client, path, request)

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=30) as client:
        before = cpu.sample() if cpu else None
        statuses, elapsed = await flat_out(send, senders=concurrency, seconds=seconds)
        after = cpu.sample() if cpu else None
    done = sum(statuses.values())
    accepted = sum(count for status, count in statuses.items() if 200 <= status < 300)
    figures = {
        "requests": done,
        "per_second": round(accepted / elapsed, 1),
        "statuses": statuses,
        "seconds": round(elapsed, 2),
    }
    if before and after and done:
        for part in ("server", "postgres"):
            figures[f"{part}_cpu_ms_per_request"] = round(
                (after[part] - before[part]) / done * 1000, 2
            )
    return figures


async def fixed_rate(
    base_url: str, path: str, requests: list[Request] | None, rate: float, seconds: float
) -> dict:
    """`rate` requests/s for `seconds`, each latency from the request's scheduled start."""
    count = int(rate * seconds)
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=30) as client:
        # Warm the connection pool so the first requests do not pay for TCP setup.
        await asyncio.gather(*(client.get(PING_PATH) for _ in range(8)))

        async def one(index: int, scheduled: float) -> None:
            status = await _one(client, path, None if requests is None else requests[index])
            latencies.append((time.perf_counter() - scheduled) * 1000)
            statuses[status] = statuses.get(status, 0) + 1

        await paced(one, count=count, rate=rate)
    return {"requests": count, "rate": rate, **summary(latencies, digits=2), "statuses": statuses}


class ServerCpu:
    """CPU seconds used by the server's processes (uvicorn and its workers) and by PostgreSQL:
    a figure per request that other load on a shared machine does not inflate much."""

    def __init__(self, server_pid: int) -> None:
        self.server_pid = server_pid
        self.postgres = service_pids(servers.state_dir(STATE), ("postgres",))

    def sample(self) -> dict[str, float]:
        return {"server": cpu_seconds([self.server_pid]), "postgres": cpu_seconds(self.postgres)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=10, help="length of the max-rate phase")
    parser.add_argument("--rate", type=float, default=100, help="requests/s of the latency phase")
    parser.add_argument("--rate-seconds", type=float, default=20)
    options = parser.parse_args()

    secret = servers.new_webhook_secret()
    with servers.migrated(
        STATE,
        TELEPHONY_WEBHOOK_SECRET=secret,
        # The bench is one signer: production's limit per signer would cap the run.
        TELEPHONY_RATE_LIMIT="",
        DB_POOL_MAX_SIZE=os.environ.get("DB_POOL_MAX_SIZE", "4"),
    ) as (_, env):
        servers.fill(env, "--webhook")
        port, base_url = servers.local_port()
        flags = ("--workers", str(options.workers), "--no-access-log", "--log-level", "warning")
        server = servers.start(servers.uvicorn("rapport.asgi:application", port, *flags), env)
        try:
            servers.wait_until_answering(base_url, server)
            results = asyncio.run(_run(base_url, secret, options, ServerCpu(server.pid)))
        finally:
            servers.stop([server])
            # No worker consumed the router's messages: drop them with the run.
            redis.Redis.from_url(env["REDIS_URL"]).delete(STATE)

    ratio = results["webhook"]["max"]["per_second"] / results["ping"]["max"]["per_second"]
    results["webhook_share_of_trivial_throughput"] = round(ratio, 3)
    results["options"] = vars(options)
    results["taken_at"] = datetime.now(tz=UTC).isoformat()
    _print_table(results)
    servers.write_results("webhook", results)


async def _run(base_url: str, secret: str, options, cpu: ServerCpu) -> dict:
    events = WholeCalls(Signer(secret), run_id=secrets.token_hex(3))
    # A short warm-up: imports, first connections, the default queue created.
    await max_throughput(base_url, EVENTS_PATH, events.batch(60), 4, 5)
    await max_throughput(base_url, PING_PATH, None, 4, 1)
    # Enough pre-signed events for any machine; signatures stay valid for 5 minutes.
    webhook_max = await max_throughput(
        base_url,
        EVENTS_PATH,
        events.batch(int(options.seconds * 3000)),
        options.concurrency,
        options.seconds,
        cpu,
    )
    ping_max = await max_throughput(
        base_url, PING_PATH, None, options.concurrency, options.seconds, cpu
    )
    webhook_rate = await fixed_rate(
        base_url,
        EVENTS_PATH,
        events.batch(int(options.rate * options.rate_seconds)),
        options.rate,
        options.rate_seconds,
    )
    ping_rate = await fixed_rate(base_url, PING_PATH, None, options.rate, options.rate_seconds)
    return {
        "webhook": {"max": webhook_max, "fixed_rate": webhook_rate},
        "ping": {"max": ping_max, "fixed_rate": ping_rate},
    }


def _print_table(results: dict) -> None:
    print(
        f"\n{'':30}{'max req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}"
        f"{'server cpu':>12}{'pg cpu':>8}  (cpu: ms per request at max)"
    )
    for name, label in (
        ("webhook", f"POST {EVENTS_PATH}"),
        ("ping", f"GET {PING_PATH}"),
    ):
        row = results[name]
        rate = row["fixed_rate"]
        print(
            f"{label:30}{row['max']['per_second']:>10}{rate['p50_ms']:>9}"
            f"{rate['p99_ms']:>9}{rate['max_ms']:>9}"
            f"{row['max'].get('server_cpu_ms_per_request', '-'):>12}"
            f"{row['max'].get('postgres_cpu_ms_per_request', '-'):>8}"
        )
    print(
        f"\nwebhook throughput = {results['webhook_share_of_trivial_throughput']:.0%} of the "
        f"trivial view's (goal >= 35%); latency at {results['options']['rate']:g} req/s "
        f"(goal p99 <= 50 ms)"
    )
    for name in ("webhook", "ping"):
        print(
            f"{name} statuses: max {results[name]['max']['statuses']}, "
            f"fixed {results[name]['fixed_rate']['statuses']}"
        )


if __name__ == "__main__":
    main()
