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
import websockets

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from development.embedded import embedded_services  # noqa: E402
from infrastructure.paths import RUNTIME_DIR  # noqa: E402
from telephony.signing import signature_headers  # noqa: E402

AGENTS = 200
# As many callers with one previous call as with 10,000, each calling again and again, so the
# two phases take the same routing paths and differ only in the history read.
LIGHT_CALLERS = 10
HEAVY_CALLERS = 10
HEAVY_HISTORY = 10_000
EVENTS_PATH = "/api/telephony/events/"


def light_number(n: int) -> str:
    return f"+1415600{n:04d}"


def heavy_number(n: int) -> str:
    return f"+1415700{n:04d}"


def fill_database() -> dict:
    """Run inside Django (`--fill`): the team, the callers and their history; prints sessions."""
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.auth.models import Group, User
    from django.contrib.sessions.backends.db import SessionStore
    from django.core.management import call_command
    from django.db import connection
    from django.utils import timezone

    from customers.models import Consent, Customer, PhoneNumber
    from routing.models import Agent, Call, Queue

    call_command("flush", "--noinput", verbosity=0)
    # Nobody waits for a last agent who is ringing for someone else: the figure is the offer's.
    queue = Queue.objects.create(
        slug="loyalty",
        name="Loyalty",
        numbers=["+18005550100"],
        offer_timeout_seconds=120,
        last_agent_wait_seconds=0,
    )
    group = Group.objects.get_or_create(name="agent")[0]
    users = User.objects.bulk_create(User(username=f"bench-{n:03d}") for n in range(AGENTS))
    group.user_set.add(*users)
    agents = Agent.objects.bulk_create(
        Agent(user=user, display_name=f"Bench {n:03d}", telephony_identity=f"7{n:03d}")
        for n, user in enumerate(users)
    )
    Agent.queues.through.objects.bulk_create(
        Agent.queues.through(agent_id=agent.id, queue_id=queue.id) for agent in agents
    )
    sessions = []
    for user in users:
        session = SessionStore()
        session[SESSION_KEY] = str(user.pk)
        session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
        session[HASH_SESSION_KEY] = user.get_session_auth_hash()
        session.create()
        sessions.append(session.session_key)

    customers = Customer.objects.bulk_create(
        [Customer(name=f"Light {n}", consent=Consent.OPEN) for n in range(LIGHT_CALLERS)]
        + [Customer(name=f"Heavy {n}", consent=Consent.OPEN) for n in range(HEAVY_CALLERS)]
    )
    numbers = [light_number(n) for n in range(LIGHT_CALLERS)]
    numbers += [heavy_number(n) for n in range(HEAVY_CALLERS)]
    PhoneNumber.objects.bulk_create(
        PhoneNumber(customer=customer, number=number)
        for customer, number in zip(customers, numbers, strict=True)
    )
    now = timezone.now()
    Call.objects.bulk_create(
        Call(
            telephony_call_id=f"light-past-{n}",
            from_e164=light_number(n),
            queue=queue,
            customer=customer,
            agent=agents[n % AGENTS],
            state="ended",
            connected_at=now - timezone.timedelta(days=3),
        )
        for n, customer in enumerate(customers[:LIGHT_CALLERS])
    )
    with connection.cursor() as cursor:
        for n, customer in enumerate(customers[LIGHT_CALLERS:]):
            cursor.execute(
                """
                INSERT INTO routing_call (telephony_call_id, from_number, from_e164, to_number,
                    queue_id, customer_id, agent_id, state, identity_verified, end_reason,
                    created_at, connected_at, state_changed_at)
                SELECT 'heavy-past-' || %s || '-' || g, '', %s, '', %s, %s, %s, 'ended', false,
                    '', now(), now() - make_interval(mins => g), now()
                FROM generate_series(1, %s) AS g
                """,
                [
                    n,
                    heavy_number(n),
                    queue.id,
                    customer.id,
                    agents[(n * 7) % AGENTS].id,
                    HEAVY_HISTORY,
                ],
            )
        cursor.execute("ANALYZE routing_call")
    return {"sessions": sessions, "debug": settings.DEBUG}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Signer:
    def __init__(self, secret: str) -> None:
        from standardwebhooks.webhooks import Webhook

        self.webhook = Webhook(secret)

    def request(self, payload: dict) -> tuple[bytes, dict[str, str]]:
        body = json.dumps(payload)
        return body.encode(), {
            "content-type": "application/json",
            **signature_headers(webhook=self.webhook, body=body),
        }


class Team:
    """The agents' sockets: each records when an offer for a call arrived."""

    def __init__(self, base_url: str, sessions: list[str]) -> None:
        self.ws_url = base_url.replace("http://", "ws://") + "/ws/agent/"
        self.origin = base_url
        self.sessions = sessions
        self.offered_at: dict[str, float] = {}
        self.offer_events: dict[str, asyncio.Event] = {}
        self.ready = 0
        self.sockets: list = []
        self.listeners: list[asyncio.Task] = []

    def waiter(self, call_id: str) -> asyncio.Event:
        return self.offer_events.setdefault(call_id, asyncio.Event())

    async def connect(self) -> None:
        for batch_start in range(0, len(self.sessions), 20):
            batch = self.sessions[batch_start : batch_start + 20]
            self.sockets += await asyncio.gather(*(self._open(key) for key in batch))
        self.listeners = [asyncio.create_task(self._listen(ws)) for ws in self.sockets]
        for ws in self.sockets:
            await ws.send(json.dumps({"type": "set_status", "status": "available"}))
        deadline = time.monotonic() + 30
        while self.ready < len(self.sockets):
            if time.monotonic() > deadline:
                raise SystemExit(f"only {self.ready} agents became available")
            await asyncio.sleep(0.05)

    async def _open(self, session_key: str):
        return await websockets.connect(
            self.ws_url,
            additional_headers={"Cookie": f"sessionid={session_key}", "Origin": self.origin},
            max_size=2**22,
            open_timeout=30,
        )

    async def _listen(self, ws) -> None:
        async for raw in ws:
            now = time.perf_counter()
            message = json.loads(raw)
            if message["type"] == "offer":
                self.offered_at[message["call_id"]] = now
                self.waiter(message["call_id"]).set()
            elif message["type"] == "status" and message["status"] == "available":
                self.ready += 1

    async def close(self) -> None:
        for task in self.listeners:
            task.cancel()
        for start in range(0, len(self.sockets), 20):
            batch = self.sockets[start : start + 20]
            await asyncio.gather(*(ws.close() for ws in batch), return_exceptions=True)


async def phase(
    name: str,
    client: httpx.AsyncClient,
    signer: Signer,
    team: Team,
    callers: dict[str, list[str]],
    *,
    rate: float,
    seconds: float,
    hang_up_after: float | None,
) -> dict:
    """`rate` calls/s for `seconds`, the kinds of caller taking turns (so neither kind runs on
    a quieter machine than the other); latencies per kind."""
    count = int(rate * seconds)
    run = secrets.token_hex(3)
    kinds = list(callers)
    accepted_at: dict[str, float] = {}
    statuses: dict[int, int] = {}
    start = time.perf_counter()

    async def ring(index: int) -> None:
        await asyncio.sleep(max(0.0, start + index / rate - time.perf_counter()))
        kind = kinds[index % len(kinds)]
        numbers = callers[kind]
        call_id = f"{name}-{kind}-{run}-{index}"
        team.waiter(call_id)
        body, headers = signer.request(
            {
                "type": "call.ringing",
                "call_id": call_id,
                "occurred_at": datetime.now(tz=UTC).isoformat(),
                "from": numbers[(index // len(kinds)) % len(numbers)],
                "to": "+18005550100",
            }
        )
        response = await client.post(EVENTS_PATH, content=body, headers=headers)
        accepted_at[call_id] = time.perf_counter()
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
        if hang_up_after is not None:
            # The caller hangs up a little after the offer rang: the agent is free again.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(team.waiter(call_id).wait(), timeout=30)
            await asyncio.sleep(hang_up_after)
            await hang_up(client, signer, call_id)

    await asyncio.gather(*(ring(index) for index in range(count)))
    call_ids = list(accepted_at)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(
            asyncio.gather(*(team.waiter(call_id).wait() for call_id in call_ids)), timeout=30
        )
    results = {"webhook_statuses": statuses}
    for kind in kinds:
        mine = [call_id for call_id in call_ids if call_id.startswith(f"{name}-{kind}-")]
        latencies = sorted(
            (team.offered_at[call_id] - accepted_at[call_id]) * 1000
            for call_id in mine
            if call_id in team.offered_at
        )
        results[kind] = {
            "calls": len(mine),
            "offered": len(latencies),
            "p50_ms": round(statistics.median(latencies), 1) if latencies else None,
            "p99_ms": round(_percentile(latencies, 99), 1) if latencies else None,
            "max_ms": round(latencies[-1], 1) if latencies else None,
            "offer_before_202": sum(1 for latency in latencies if latency < 0),
        }
    if hang_up_after is None:
        await asyncio.gather(*(hang_up(client, signer, call_id) for call_id in call_ids))
    # Withdrawn offers free their agents; give the router a moment to settle.
    await asyncio.sleep(2)
    return results


async def hang_up(client: httpx.AsyncClient, signer: Signer, call_id: str) -> None:
    body, headers = signer.request(
        {
            "type": "call.ended",
            "call_id": call_id,
            "occurred_at": datetime.now(tz=UTC).isoformat(),
            "reason": "abandoned",
        }
    )
    await client.post(EVENTS_PATH, content=body, headers=headers)


def _percentile(values: list[float], percent: float) -> float:
    index = max(0, min(len(values) - 1, round(percent / 100 * len(values) + 0.5) - 1))
    return values[index]


async def drive(base_url: str, secret: str, sessions: list[str], options) -> dict:
    signer = Signer(secret)
    team = Team(base_url, sessions)
    await team.connect()
    callers = {
        "one_previous_call": [light_number(n) for n in range(LIGHT_CALLERS)],
        "10000_previous_calls": [heavy_number(n) for n in range(HEAVY_CALLERS)],
    }
    limits = httpx.Limits(max_connections=32)
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=30) as client:
        await phase(
            "warmup",
            client,
            signer,
            team,
            callers,
            rate=options.rate,
            seconds=2,
            hang_up_after=None,
        )
        results = await phase(
            "measured",
            client,
            signer,
            team,
            callers,
            rate=options.rate,
            seconds=options.seconds,
            hang_up_after=options.hang_up_after,
        )
    await team.close()
    return results


def server_side_figures(database_url: str) -> dict:
    """From the routing decisions: the call reaching its queue to the offer being made (the
    rest of the latency is the socket push), and the router's own time per offer."""
    import psycopg

    figures = {}
    with psycopg.connect(database_url) as connection:
        for label in ("one_previous_call", "10000_previous_calls"):
            row = connection.execute(
                """
                SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY d.caller_waited_ms),
                       percentile_cont(0.99) WITHIN GROUP (ORDER BY d.caller_waited_ms),
                       percentile_cont(0.5) WITHIN GROUP (ORDER BY d.took_ms),
                       percentile_cont(0.99) WITHIN GROUP (ORDER BY d.took_ms)
                FROM routing_routingdecision d JOIN routing_call c ON c.id = d.call_id
                WHERE d.offer_id IS NOT NULL AND c.telephony_call_id LIKE %s
                """,
                [f"measured-{label}-%"],
            ).fetchone()
            figures[label] = dict(
                zip(
                    (
                        "queued_to_offer_p50_ms",
                        "queued_to_offer_p99_ms",
                        "routing_p50_ms",
                        "routing_p99_ms",
                    ),
                    row,
                    strict=True,
                )
            )
    return figures


def _wait_for_server(base_url: str, process: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"uvicorn exited with {process.returncode}")
        try:
            if httpx.get(base_url + "/api/health/", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit("uvicorn did not answer")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=20, help="calls per second")
    parser.add_argument("--seconds", type=float, default=10, help="length of the measured run")
    parser.add_argument(
        "--hang-up-after",
        type=float,
        default=None,
        help="each caller hangs up this many seconds after their offer rang (default: all hang "
        "up at the end; then rate x seconds must not exceed the 200 agents)",
    )
    parser.add_argument("--worker-processes", type=int, default=2, help="Celery prefork pool")
    parser.add_argument("--fill", action="store_true", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.fill:
        print(json.dumps(fill_database()))
        return

    secret = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
    state_dir = RUNTIME_DIR / "bench-router"
    with embedded_services(state_dir) as urls:
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
            "CELERY_QUEUE": "bench-router",
            "DJANGO_SETTINGS_MODULE": "rapport.settings",
        }
        python = sys.executable
        subprocess.run(
            [python, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True
        )
        filled = subprocess.run(
            [python, __file__, "--fill"], cwd=ROOT, env=env, check=True, capture_output=True
        )
        sessions = json.loads(filled.stdout.decode().strip().splitlines()[-1])["sessions"]
        port = _free_port()
        base_url = f"http://127.0.0.1:{port}"
        processes = [
            subprocess.Popen(
                [
                    *(python, "-m", "uvicorn", "rapport.asgi:application"),
                    *("--host", "127.0.0.1", "--port", str(port)),
                    *("--no-access-log", "--log-level", "warning", "--lifespan", "off"),
                ],
                cwd=ROOT,
                env={**env, "DB_POOL_MAX_SIZE": "8"},
            ),
            subprocess.Popen(
                [
                    *(python, "-m", "celery", "-A", "rapport", "worker", "-P", "prefork"),
                    *("-c", str(options.worker_processes), "--loglevel", "WARNING"),
                    *("--without-gossip", "--without-mingle", "--without-heartbeat"),
                ],
                cwd=ROOT,
                env=env,
            ),
            subprocess.Popen(
                [
                    *(python, "-m", "celery", "-A", "rapport", "beat", "--loglevel", "WARNING"),
                    *("--schedule", str(state_dir / "celerybeat-schedule")),
                ],
                cwd=ROOT,
                env=env,
            ),
        ]
        try:
            _wait_for_server(base_url, processes[0])
            results = asyncio.run(drive(base_url, secret, sessions, options))
            results["server_side"] = server_side_figures(urls["DATABASE_URL"])
        finally:
            for process in processes:
                process.terminate()
            for process in processes:
                try:
                    process.wait(20)
                except subprocess.TimeoutExpired:
                    process.kill()

    light, heavy = results["one_previous_call"], results["10000_previous_calls"]
    if light["p50_ms"] and heavy["p50_ms"]:
        results["history_ratio_p50"] = round(heavy["p50_ms"] / light["p50_ms"], 2)
        results["history_ratio_p99"] = round(heavy["p99_ms"] / light["p99_ms"], 2)
    results["options"] = {k: v for k, v in vars(options).items() if k != "fill"}
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
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"offer-latency-{datetime.now(tz=UTC):%Y%m%dT%H%M%SZ}.json"
    path.write_text(json.dumps(results, indent=2))
    print(f"written to {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
