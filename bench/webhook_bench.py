"""Telephony webhook benchmark: the production server, real PostgreSQL and Redis, signed events.

Starts embedded PostgreSQL and Redis under `.rapport/bench` (unless DATABASE_URL / REDIS_URL are
set), migrates, starts `uvicorn rapport.asgi:application` (no access log) and drives it from this
process with httpx:

  1. max throughput: as many requests as `--concurrency` connections can push for `--seconds`;
  2. latency at a fixed rate: `--rate` requests/s for `--rate-seconds` (p50/p99 measured from
     each request's scheduled start, so a stall is not hidden by the sender waiting).

Both for signed webhook events (each call rings, is answered, ends: the full write path) and for
`GET /api/telephony/ping/`, a trivial Django view on the same server (no database, no auth).

    .venv/bin/python bench/webhook_bench.py [--workers 2] [--seconds 10] [--rate 100]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import secrets
import socket
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from development.embedded import embedded_services  # noqa: E402
from infrastructure.paths import RUNTIME_DIR  # noqa: E402
from telephony.signing import signature_headers  # noqa: E402

EVENTS_PATH = "/api/telephony/events/"
PING_PATH = "/api/telephony/ping/"
AGENTS = 50
# A team of agents, so answers of different calls do not all queue on one agent's row.
CREATE_AGENTS = f"""
from django.contrib.auth.models import User
from routing.models import Agent
for number in range({AGENTS}):
    user, _ = User.objects.get_or_create(username=f"bench-agent-{{number}}")
    Agent.objects.get_or_create(
        user=user,
        defaults={{"display_name": f"Bench {{number}}", "telephony_identity": f"90{{number:02d}}"}},
    )
"""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class SignedEvents:
    """Signed webhook requests, signed before the clock starts (signing is the sender's cost)."""

    def __init__(self, secret: str, run_id: str) -> None:
        from standardwebhooks.webhooks import Webhook

        self.webhook = Webhook(secret)
        self.run_id = run_id
        self.calls = 0

    def _signed(self, payload: dict) -> tuple[bytes, dict[str, str]]:
        body = json.dumps(payload)
        return body.encode(), {
            "content-type": "application/json",
            **signature_headers(webhook=self.webhook, body=body),
        }

    def batch(self, count: int) -> list[tuple[bytes, dict[str, str]]]:
        requests = []
        while len(requests) < count:
            self.calls += 1
            call_id = f"bench-{self.run_id}-{self.calls}"
            now = datetime.now(tz=UTC).isoformat()
            for payload in (
                {
                    "type": "call.ringing",
                    "call_id": call_id,
                    "occurred_at": now,
                    "from": f"+1415555{self.calls % 10000:04d}",
                    "to": "+18005550100",
                },
                {
                    "type": "call.answered",
                    "call_id": call_id,
                    "occurred_at": now,
                    "agent": f"90{self.calls % AGENTS:02d}",
                },
                {
                    "type": "call.ended",
                    "call_id": call_id,
                    "occurred_at": now,
                    "reason": "completed",
                },
            ):
                requests.append(self._signed(payload))
        return requests[:count]


class ServerCpu:
    """CPU seconds used by the server's processes (uvicorn and its workers) and by PostgreSQL:
    a figure per request that other load on a shared machine does not inflate much."""

    def __init__(self, server_pid: int, postgres_dir: Path) -> None:
        self.server_pid = server_pid
        self.postgres_dir = str(postgres_dir)

    @staticmethod
    def _processes() -> list[tuple[int, int, float, str]]:
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            with contextlib.suppress(OSError, IndexError, ValueError):
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
                ticks = int(fields[11]) + int(fields[12])
                found.append((int(entry.name), int(fields[1]), ticks / CLOCK_TICKS, cmdline))
        return found

    def sample(self) -> dict[str, float]:
        processes = self._processes()
        children: dict[int, list[int]] = {}
        for pid, parent, _, _ in processes:
            children.setdefault(parent, []).append(pid)

        def tree(root: int) -> set[int]:
            pids, pending = set(), [root]
            while pending:
                pid = pending.pop()
                pids.add(pid)
                pending.extend(children.get(pid, []))
            return pids

        postmasters = [pid for pid, _, _, cmd in processes if self.postgres_dir in cmd]
        server = tree(self.server_pid)
        postgres = set().union(*(tree(pid) for pid in postmasters)) if postmasters else set()
        return {
            "server": sum(cpu for pid, _, cpu, _ in processes if pid in server),
            "postgres": sum(cpu for pid, _, cpu, _ in processes if pid in postgres),
        }


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


async def _one(client: httpx.AsyncClient, method: str, path: str, request) -> int:
    if method == "POST":
        body, headers = request
        response = await client.post(path, content=body, headers=headers)
    else:
        response = await client.get(path)
    return response.status_code


async def max_throughput(
    base_url, method, path, requests, concurrency, seconds, cpu: ServerCpu | None = None
) -> dict:
    statuses: dict[int, int] = {}
    done = 0
    position = iter(requests or ())
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=30) as client:
        before = cpu.sample() if cpu else None
        started = time.perf_counter()
        deadline = started + seconds

        async def sender():
            nonlocal done
            while time.perf_counter() < deadline:
                request = next(position, None)
                if method == "POST" and request is None:
                    return
                status = await _one(client, method, path, request)
                statuses[status] = statuses.get(status, 0) + 1
                done += 1

        await asyncio.gather(*(sender() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
        after = cpu.sample() if cpu else None
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


async def fixed_rate(base_url, method, path, requests, rate, seconds) -> dict:
    count = int(rate * seconds)
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=30) as client:
        # Warm the connection pool so the first requests do not pay for TCP setup.
        await asyncio.gather(*(client.get(PING_PATH) for _ in range(8)))
        started = time.perf_counter()

        async def send(index: int) -> None:
            scheduled = started + index / rate
            await asyncio.sleep(max(0.0, scheduled - time.perf_counter()))
            request = requests[index] if method == "POST" else None
            status = await _one(client, method, path, request)
            latencies.append((time.perf_counter() - scheduled) * 1000)
            statuses[status] = statuses.get(status, 0) + 1

        await asyncio.gather(*(send(index) for index in range(count)))
    latencies.sort()
    return {
        "requests": count,
        "rate": rate,
        "p50_ms": round(statistics.median(latencies), 2),
        "p99_ms": round(latencies[int(len(latencies) * 0.99) - 1], 2),
        "max_ms": round(latencies[-1], 2),
        "statuses": statuses,
    }


def _wait_for_server(base_url: str, process: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"uvicorn exited with {process.returncode}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(base_url + PING_PATH, timeout=1).status_code == 200:
                return
        time.sleep(0.2)
    raise SystemExit("uvicorn did not answer")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=10, help="length of the max-rate phase")
    parser.add_argument("--rate", type=float, default=100, help="requests/s of the latency phase")
    parser.add_argument("--rate-seconds", type=float, default=20)
    options = parser.parse_args()

    secret = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
    with embedded_services(RUNTIME_DIR / "bench") as urls:
        env = {
            **os.environ,
            **urls,
            "DEBUG": "0",
            # Production as it runs, minus TLS: the load generator speaks plain HTTP.
            "SECRET_KEY": secrets.token_urlsafe(50),
            "INSECURE_HTTP": "1",
            "LOG_LEVEL": "WARNING",
            "TELEPHONY_WEBHOOK_SECRET": secret,
            # One load generator is one source address: the per-source limit would cap the run.
            "TELEPHONY_RATE_LIMIT": "",
            "TELEPHONY_CONTROL_URL": "",
            "CELERY_QUEUE": "bench",
            "DJANGO_SETTINGS_MODULE": "rapport.settings",
            "DB_POOL_MAX_SIZE": os.environ.get("DB_POOL_MAX_SIZE", "4"),
        }
        python = sys.executable
        subprocess.run(
            [python, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True
        )
        subprocess.run(
            [python, "manage.py", "shell", "-c", CREATE_AGENTS], cwd=ROOT, env=env, check=True
        )
        port = _free_port()
        base_url = f"http://127.0.0.1:{port}"
        server = subprocess.Popen(
            [
                *(python, "-m", "uvicorn", "rapport.asgi:application"),
                *("--host", "127.0.0.1", "--port", str(port)),
                *("--workers", str(options.workers), "--no-access-log", "--log-level", "warning"),
            ],
            cwd=ROOT,
            env=env,
        )
        try:
            _wait_for_server(base_url, server)
            cpu = ServerCpu(server.pid, RUNTIME_DIR / "bench" / "postgres")
            results = asyncio.run(_run(base_url, secret, options, cpu))
        finally:
            server.terminate()
            server.wait(30)
            # No worker consumed the router's messages: drop them with the run.
            redis.Redis.from_url(env["REDIS_URL"]).delete("bench")

    ratio = results["webhook"]["max"]["per_second"] / results["ping"]["max"]["per_second"]
    results["webhook_share_of_trivial_throughput"] = round(ratio, 3)
    results["options"] = vars(options)
    results["taken_at"] = datetime.now(tz=UTC).isoformat()
    _print_table(results)
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"webhook-{datetime.now(tz=UTC):%Y%m%dT%H%M%SZ}.json"
    path.write_text(json.dumps(results, indent=2))
    print(f"\nwritten to {path.relative_to(ROOT)}")


async def _run(base_url: str, secret: str, options, cpu: ServerCpu) -> dict:
    events = SignedEvents(secret, run_id=secrets.token_hex(3))
    # A short warm-up: imports, first connections, the default queue created.
    await max_throughput(base_url, "POST", EVENTS_PATH, events.batch(60), 4, 5)
    await max_throughput(base_url, "GET", PING_PATH, None, 4, 1)
    # Enough pre-signed events for any machine; signatures stay valid for 5 minutes.
    webhook_max = await max_throughput(
        base_url,
        "POST",
        EVENTS_PATH,
        events.batch(int(options.seconds * 3000)),
        options.concurrency,
        options.seconds,
        cpu,
    )
    ping_max = await max_throughput(
        base_url, "GET", PING_PATH, None, options.concurrency, options.seconds, cpu
    )
    webhook_rate = await fixed_rate(
        base_url,
        "POST",
        EVENTS_PATH,
        events.batch(int(options.rate * options.rate_seconds)),
        options.rate,
        options.rate_seconds,
    )
    ping_rate = await fixed_rate(
        base_url, "GET", PING_PATH, None, options.rate, options.rate_seconds
    )
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
        ("webhook", "POST /api/telephony/events/"),
        ("ping", "GET /api/telephony/ping/"),
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
