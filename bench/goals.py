"""Issue #14's goals, each measured against its anchor in the same run, PASS or MISS.

One command, a few minutes: embedded PostgreSQL and Redis under `.rapport/bench-goals` (unless
DATABASE_URL / REDIS_URL are set), Rapport as production runs it (uvicorn, one process; a
Celery worker; Celery beat) and, beside it, `bench/bare_app.py` (uvicorn + the same channels-redis
layer, no Rapport code). Phases, in order:

  1. the wire: 200 sockets on the bare app, `--rate` POST → group_send → socket a second;
  2. screen-pop: 200 agent sockets, `--rate` signed `call.ringing` a second, the latency from
     the moment each POST is sent to the offer on the socket; callers with 1 previous call and
     with 10,000 take turns; the router's `took_ms` from the decisions;
  3. webhook: server CPU per event (ringing, answered, ended) against `GET /api/telephony/ping/`
     on the same server, both at full speed, each once the worker has caught up with what came
     before (the worker's CPU per event, applying them, is printed beside); p99 at 50 events/s;
  4. scale: 800 more agent sockets (1,000 on the one ASGI process), its memory per socket, the
     screen-pop again at `--rate` calls/s;
  5. idle: no calls (1,000 sockets still open), CPU of every Rapport process;
  6. all 1,000 sockets close at once: errors in the server's log.

    .venv/bin/python bench/goals.py [--quick] [--only webhook|screen-pop]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import resource
import secrets
import signal
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import psutil
import websockets

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(BENCH))

import offer_latency  # noqa: E402
from offer_latency import (  # noqa: E402
    EVENTS_PATH,
    HEAVY_CALLERS,
    LIGHT_CALLERS,
    Signer,
    Team,
    _free_port,
    _percentile,
    hang_up,
    heavy_number,
    light_number,
)
from webhook_bench import AGENTS as WEBHOOK_AGENTS  # noqa: E402
from webhook_bench import PING_PATH, SignedEvents  # noqa: E402

from development.embedded import embedded_services  # noqa: E402
from infrastructure.paths import RUNTIME_DIR  # noqa: E402

TEAM = 1000
FIRST_TEAM = 200
WEBHOOK_QUEUE = "webhook-bench"


# The Celery queue the bench's worker consumes.
BROKER_QUEUE = "bench-goals"


def fill_database() -> dict:
    """Inside Django (`--fill`): offer_latency's team and callers, 1,000 agents strong, and the
    webhook phase's agents in a queue of their own (their calls ring nobody in the team)."""
    offer_latency.AGENTS = TEAM
    filled = offer_latency.fill_database()
    from django.contrib.auth.models import User

    from routing.models import Agent, Queue

    # A short wrap-up: by the idle phase these agents are back to available, nothing in flight.
    Queue.objects.create(
        slug=WEBHOOK_QUEUE, name="Webhook bench", last_agent_wait_seconds=0, wrap_up_seconds=5
    )
    users = User.objects.bulk_create(
        User(username=f"bench-agent-{n}") for n in range(WEBHOOK_AGENTS)
    )
    Agent.objects.bulk_create(
        Agent(user=user, display_name=f"Webhook {n}", telephony_identity=f"90{n:02d}")
        for n, user in enumerate(users)
    )
    return filled


class PatientTeam(Team):
    """offer_latency's team, given two minutes to connect: 800 sockets on a loaded machine. Its
    sockets do not ping the server (a browser's never do), so the idle figure is the server's."""

    async def _open(self, session_key: str):
        return await websockets.connect(
            self.ws_url,
            additional_headers={"Cookie": f"sessionid={session_key}", "Origin": self.origin},
            max_size=2**22,
            open_timeout=60,
            ping_interval=None,
        )

    async def connect(self) -> None:
        for batch_start in range(0, len(self.sessions), 20):
            batch = self.sessions[batch_start : batch_start + 20]
            self.sockets += await asyncio.gather(*(self._open(key) for key in batch))
        self.listeners = [asyncio.create_task(self._listen(ws)) for ws in self.sockets]
        for ws in self.sockets:
            await ws.send(json.dumps({"type": "set_status", "status": "available"}))
        deadline = time.monotonic() + 120
        while self.ready < len(self.sockets):
            if time.monotonic() > deadline:
                raise SystemExit(f"only {self.ready} agents became available")
            await asyncio.sleep(0.05)


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def _raise_file_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 20000), hard))


def cpu_seconds(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            process = psutil.Process(pid)
            for each in [process, *process.children(recursive=True)]:
                with contextlib.suppress(psutil.Error):
                    times = each.cpu_times()
                    total += times.user + times.system
    return total


def postgres_and_redis_pids(state_dir: Path) -> list[int]:
    found = []
    for process in psutil.process_iter(["pid", "cmdline"]):
        cmdline = " ".join(process.info["cmdline"] or [])
        if str(state_dir) in cmdline and ("postgres" in cmdline or "redis" in cmdline):
            found.append(process.info["pid"])
    return found


def summary(latencies: list[float]) -> dict:
    latencies = sorted(latencies)
    if not latencies:
        return {"count": 0, "p50_ms": None, "p99_ms": None, "max_ms": None}
    return {
        "count": len(latencies),
        "p50_ms": round(statistics.median(latencies), 1),
        "p99_ms": round(_percentile(latencies, 99), 1),
        "max_ms": round(latencies[-1], 1),
    }


# ---------------------------------------------------------------------------------------------
# 1. The wire


async def bare_round_trip(base_url: str, *, sockets: int, rate: float, seconds: float) -> dict:
    ws_base = base_url.replace("http://", "ws://")
    groups = [f"g{n}" for n in range(sockets)]
    opened = []
    for start in range(0, sockets, 20):
        opened += await asyncio.gather(
            *(websockets.connect(f"{ws_base}/ws/{g}") for g in groups[start : start + 20])
        )
    arrived: dict[str, float] = {}
    events: dict[str, asyncio.Event] = {}

    async def listen(ws) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            async for raw in ws:
                arrived[raw] = time.perf_counter()
                events.setdefault(raw, asyncio.Event()).set()

    listeners = [asyncio.create_task(listen(ws)) for ws in opened]
    # channels-redis adds a group member asynchronously to the socket's accept.
    await asyncio.sleep(1)
    latencies: list[float] = []
    async with httpx.AsyncClient(base_url=base_url, limits=httpx.Limits(max_connections=32)) as c:

        async def one(index: int, start: float, sent: dict) -> None:
            await asyncio.sleep(max(0.0, start + index / rate - time.perf_counter()))
            token = f"m{index}-{secrets.token_hex(4)}"
            event = events.setdefault(token, asyncio.Event())
            sent[token] = time.perf_counter()
            await c.post(f"/send/{groups[index % sockets]}", content=token)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), 10)

        warm: dict = {}
        start = time.perf_counter()
        await asyncio.gather(*(one(i, start, warm) for i in range(int(rate))))
        sent: dict = {}
        start = time.perf_counter()
        await asyncio.gather(*(one(i, start, sent) for i in range(int(rate * seconds))))
        latencies = [(arrived[t] - sent[t]) * 1000 for t in sent if t in arrived]
    for task in listeners:
        task.cancel()
    await asyncio.gather(*(ws.close() for ws in opened), return_exceptions=True)
    return {**summary(latencies), "sent": int(rate * seconds)}


# ---------------------------------------------------------------------------------------------
# 2. and 4. Screen-pop


async def screen_pop(
    client: httpx.AsyncClient,
    signer: Signer,
    team: Team,
    *,
    name: str,
    rate: float,
    seconds: float,
    cpu: tuple[list[int], list[int]] = ([], []),
) -> dict:
    """`rate` calls/s for `seconds`; latency from the POST being sent to the offer on a socket,
    and the CPU the calls cost (Rapport's processes; PostgreSQL and Redis) until the last offer:
    a figure that other load on a shared machine inflates far less than latency. Every caller
    hangs up at the end, freeing the agents."""
    rapport_pids, service_pids = cpu
    cpu_before = (cpu_seconds(rapport_pids), cpu_seconds(service_pids))
    each_before = {pid: cpu_seconds([pid]) for pid in rapport_pids}
    count = int(rate * seconds)
    run = secrets.token_hex(3)
    kinds = {
        "one_previous_call": [light_number(n) for n in range(LIGHT_CALLERS)],
        "10000_previous_calls": [heavy_number(n) for n in range(HEAVY_CALLERS)],
    }
    names = list(kinds)
    sent_at: dict[str, float] = {}
    statuses: dict[int, int] = {}
    start = time.perf_counter()

    async def ring(index: int) -> None:
        await asyncio.sleep(max(0.0, start + index / rate - time.perf_counter()))
        kind = names[index % 2]
        numbers = kinds[kind]
        call_id = f"{name}-{kind}-{run}-{index}"
        team.waiter(call_id)
        body, headers = signer.request(
            {
                "type": "call.ringing",
                "call_id": call_id,
                "occurred_at": datetime.now(tz=UTC).isoformat(),
                "from": numbers[(index // 2) % len(numbers)],
                "to": "+18005550100",
            }
        )
        sent_at[call_id] = time.perf_counter()
        response = await client.post(EVENTS_PATH, content=body, headers=headers)
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1

    await asyncio.gather(*(ring(index) for index in range(count)))
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(
            asyncio.gather(*(team.waiter(call_id).wait() for call_id in sent_at)), timeout=30
        )
    results: dict = {
        "statuses": statuses,
        "rapport_cpu_ms_per_call": round(
            (cpu_seconds(rapport_pids) - cpu_before[0]) / count * 1000, 1
        ),
        "postgres_redis_cpu_ms_per_call": round(
            (cpu_seconds(service_pids) - cpu_before[1]) / count * 1000, 1
        ),
        # uvicorn (webhook and sockets), the Celery worker (the router), beat: in `cpu`'s order.
        "cpu_ms_per_call_by_process": [
            round((cpu_seconds([pid]) - used) / count * 1000, 1)
            for pid, used in each_before.items()
        ],
    }
    everyone = []
    for kind in names:
        latencies = [
            (team.offered_at[call_id] - sent_at[call_id]) * 1000
            for call_id in sent_at
            if f"-{kind}-" in call_id and call_id in team.offered_at
        ]
        everyone += latencies
        results[kind] = summary(latencies)
    results["all"] = {**summary(everyone), "calls": count}
    await asyncio.gather(*(hang_up(client, signer, call_id) for call_id in sent_at))
    # Withdrawn offers free their agents; let the router settle.
    await asyncio.sleep(2)
    return results


def took_ms(database_url: str, name: str) -> dict:
    import psycopg

    with psycopg.connect(database_url) as connection:
        row = connection.execute(
            """
            SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY d.took_ms),
                   percentile_cont(0.99) WITHIN GROUP (ORDER BY d.took_ms), count(*)
            FROM routing_routingdecision d JOIN routing_call c ON c.id = d.call_id
            WHERE d.offer_id IS NOT NULL AND c.telephony_call_id LIKE %s
            """,
            [f"{name}-%"],
        ).fetchone()
    return {"p50_ms": row[0], "p99_ms": row[1], "decisions": row[2]}


# ---------------------------------------------------------------------------------------------
# 3. Webhook


async def worker_settled(worker_pid: int, *, quiet_percent: float = 5, limit: float = 120) -> None:
    """Wait until the Celery worker is done with what a phase left it (under `quiet_percent` of
    a core over half a second), so the next phase is not measured beside its backlog."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        before = cpu_seconds([worker_pid])
        await asyncio.sleep(0.5)
        if (cpu_seconds([worker_pid]) - before) / 0.5 * 100 < quiet_percent:
            return


async def webhook_cost(
    base_url: str, secret: str, server_pid: int, worker_pid: int, *, seconds: float, rate: float
) -> dict:
    events = SignedEvents(secret, run_id=secrets.token_hex(3))
    original = events._signed

    def into_bench_queue(payload: dict):
        if payload["type"] == "call.ringing":
            payload = {**payload, "queue": WEBHOOK_QUEUE}
        return original(payload)

    events._signed = into_bench_queue
    limits = httpx.Limits(max_connections=8, max_keepalive_connections=8)
    # Events sent per call: ringing, answered, ended (3: the call is over).
    events_sent: dict[str, int] = {}

    async def full_speed(path: str, requests: list | None) -> dict:
        position = iter(requests or ())
        done = 0
        statuses: dict[int, int] = {}
        async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=30) as client:
            before = cpu_seconds([server_pid])
            started = time.perf_counter()

            async def sender() -> None:
                nonlocal done
                while time.perf_counter() < started + seconds:
                    if requests is None:
                        response = await client.get(path)
                    else:
                        request = next(position, None)
                        if request is None:
                            return
                        response = await client.post(path, content=request[0], headers=request[1])
                        call_id = json.loads(request[0])["call_id"]
                        events_sent[call_id] = events_sent.get(call_id, 0) + 1
                    statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
                    done += 1

            await asyncio.gather(*(sender() for _ in range(8)))
            used = cpu_seconds([server_pid]) - before
            elapsed = time.perf_counter() - started
        return {
            "requests": done,
            "per_second": round(done / elapsed, 1),
            "server_cpu_ms_per_request": round(used / max(done, 1) * 1000, 2),
            "statuses": statuses,
        }

    async def fixed(requests: list) -> dict:
        latencies: list[float] = []
        statuses: dict[int, int] = {}
        async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=30) as client:
            await asyncio.gather(*(client.get(PING_PATH) for _ in range(8)))
            started = time.perf_counter()

            async def send(index: int) -> None:
                scheduled = started + index / rate
                await asyncio.sleep(max(0.0, scheduled - time.perf_counter()))
                body, headers = requests[index]
                response = await client.post(EVENTS_PATH, content=body, headers=headers)
                call_id = json.loads(body)["call_id"]
                events_sent[call_id] = events_sent.get(call_id, 0) + 1
                latencies.append((time.perf_counter() - scheduled) * 1000)
                statuses[response.status_code] = statuses.get(response.status_code, 0) + 1

            await asyncio.gather(*(send(index) for index in range(len(requests))))
        return {**summary(latencies), "rate": rate, "statuses": statuses}

    await full_speed(EVENTS_PATH, events.batch(60))
    await worker_settled(worker_pid)
    await full_speed(PING_PATH, None)
    worker_before = cpu_seconds([worker_pid])
    webhook = await full_speed(EVENTS_PATH, events.batch(int(seconds * 600)))
    # The webhook records each event and a worker applies it: what the worker spends on the
    # phase's events, until it has caught up, is shown beside the server's (not a goal).
    await worker_settled(worker_pid)
    webhook["worker_cpu_ms_per_request"] = round(
        (cpu_seconds([worker_pid]) - worker_before) / max(webhook["requests"], 1) * 1000, 2
    )
    ping = await full_speed(PING_PATH, None)
    at_rate = await fixed(events.batch(int(rate * seconds * 2)))
    # The full-speed phases stop in the middle of a call or two: end those, so the idle phase
    # has no call in flight.
    enders = [
        original(
            {
                "type": "call.ended",
                "call_id": call_id,
                "occurred_at": datetime.now(tz=UTC).isoformat(),
                "reason": "completed",
            }
        )
        for call_id, sent in events_sent.items()
        if sent < 3
    ]
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=60) as client:
        for start in range(0, len(enders), 8):
            await asyncio.gather(
                *(
                    client.post(EVENTS_PATH, content=body, headers=headers)
                    for body, headers in enders[start : start + 8]
                )
            )
    return {"webhook": webhook, "ping": ping, "at_rate": at_rate}


# ---------------------------------------------------------------------------------------------


async def tasks_drained(redis_url: str, *, timeout: float = 60) -> float:
    """Seconds until the router's queue is empty: agents who just became ready each queued a
    look for a waiting caller, and a phase measured behind that backlog measures the backlog."""
    import redis.asyncio

    start = time.perf_counter()
    broker = redis.asyncio.Redis.from_url(redis_url)
    try:
        while await broker.llen(BROKER_QUEUE) and time.perf_counter() - start < timeout:
            await asyncio.sleep(0.05)
    finally:
        await broker.aclose()
    await asyncio.sleep(0.5)
    return round(time.perf_counter() - start - 0.5, 2)


def rss_kib(pid: int) -> int:
    return psutil.Process(pid).memory_info().rss // 1024


async def drive(urls: dict, rapport_url: str, bare_url: str, secret: str, sessions, pids, log):
    options = OPTIONS
    seconds = options.seconds
    results: dict = {}
    if options.only == "webhook":
        results["webhook"] = await webhook_cost(
            rapport_url, secret, pids["uvicorn"], pids["worker"], seconds=seconds, rate=50
        )
        print("webhook:", json.dumps(results["webhook"]), flush=True)
        return results
    results["wire"] = await bare_round_trip(
        bare_url, sockets=FIRST_TEAM, rate=options.rate, seconds=seconds
    )
    print("wire:", json.dumps(results["wire"]), flush=True)

    signer = Signer(secret)
    team = PatientTeam(rapport_url, sessions[:FIRST_TEAM])
    await team.connect()
    await tasks_drained(urls["REDIS_URL"])
    limits = httpx.Limits(max_connections=32)
    async with httpx.AsyncClient(base_url=rapport_url, limits=limits, timeout=30) as client:
        await screen_pop(client, signer, team, name="warmup", rate=options.rate, seconds=2)
        cpu = ([pids["uvicorn"], pids["worker"], pids["beat"]], postgres_and_redis_pids(STATE_DIR))
        results["screen_pop_200"] = await screen_pop(
            client, signer, team, name="pop200", rate=options.rate, seconds=seconds, cpu=cpu
        )
        results["took_ms"] = took_ms(urls["DATABASE_URL"], "pop200")
        print("screen-pop, 200 sockets:", json.dumps(results["screen_pop_200"]), flush=True)
        if options.only == "screen-pop":
            for task in team.listeners:
                task.cancel()
            await asyncio.gather(*(ws.close() for ws in team.sockets), return_exceptions=True)
            return results

        results["webhook"] = await webhook_cost(
            rapport_url, secret, pids["uvicorn"], pids["worker"], seconds=seconds, rate=50
        )
        print("webhook:", json.dumps(results["webhook"]), flush=True)
        await asyncio.sleep(2)

        rss_before = rss_kib(pids["uvicorn"])
        more = PatientTeam(rapport_url, sessions[FIRST_TEAM:TEAM])
        await more.connect()
        await asyncio.sleep(1)
        rss_after = rss_kib(pids["uvicorn"])
        # 800 agents ready at once: a look for a waiting caller each, queued before any call.
        results["ready_800_drained_s"] = await tasks_drained(urls["REDIS_URL"])
        results["memory"] = {
            "rss_kib_200_sockets": rss_before,
            "rss_kib_1000_sockets": rss_after,
            "kib_per_socket": round((rss_after - rss_before) / (TEAM - FIRST_TEAM), 1),
        }
        # Offers reach whichever socket they ring: both teams record them.
        both = Team(rapport_url, [])
        both.offer_events = team.offer_events
        both.offered_at = team.offered_at
        more.offer_events = team.offer_events
        more.offered_at = team.offered_at
        results["screen_pop_1000"] = await screen_pop(
            client, signer, both, name="pop1000", rate=options.rate, seconds=seconds, cpu=cpu
        )
        print("screen-pop, 1000 sockets:", json.dumps(results["screen_pop_1000"]), flush=True)

    await asyncio.sleep(3)
    idle_pids = [pids["uvicorn"], pids["worker"], pids["beat"]]
    services = postgres_and_redis_pids(STATE_DIR)
    before, before_services = cpu_seconds(idle_pids), cpu_seconds(services)
    each_before = {name: cpu_seconds([pids[name]]) for name in ("uvicorn", "worker", "beat")}
    started = time.perf_counter()
    await asyncio.sleep(options.idle_seconds)
    elapsed = time.perf_counter() - started
    results["idle"] = {
        **{
            f"{name}_percent": round((cpu_seconds([pids[name]]) - used) / elapsed * 100, 2)
            for name, used in each_before.items()
        },
        "seconds": round(elapsed, 1),
        "rapport_percent_of_a_core": round((cpu_seconds(idle_pids) - before) / elapsed * 100, 2),
        "postgres_redis_percent_of_a_core": round(
            (cpu_seconds(services) - before_services) / elapsed * 100, 2
        ),
        "sockets_open": TEAM,
    }
    print("idle:", json.dumps(results["idle"]), flush=True)

    mark = log.stat().st_size
    for task in team.listeners + more.listeners:
        task.cancel()
    closed = await asyncio.gather(
        *(ws.close() for ws in team.sockets + more.sockets), return_exceptions=True
    )
    await asyncio.sleep(5)
    with log.open() as server_log:
        server_log.seek(mark)
        after_close = server_log.read()
    error_lines = [
        line
        for line in after_close.splitlines()
        if "Error" in line or "Traceback" in line or "Exception" in line
    ]
    results["disconnect_all"] = {
        "sockets": len(closed),
        "client_errors": sum(1 for c in closed if isinstance(c, Exception)),
        "server_error_lines": len(error_lines),
        "first_errors": error_lines[:5],
    }
    print("disconnect all:", json.dumps(results["disconnect_all"]), flush=True)
    return results


def webhook_verdicts(results: dict) -> list[tuple[str, str, str, bool]]:
    webhook = results["webhook"]
    cpu_ratio = (
        webhook["webhook"]["server_cpu_ms_per_request"]
        / webhook["ping"]["server_cpu_ms_per_request"]
    )
    return [
        (
            "webhook server CPU/event <= 2x trivial view",
            f"{webhook['webhook']['server_cpu_ms_per_request']} ms",
            f"{cpu_ratio:.1f}x of {webhook['ping']['server_cpu_ms_per_request']} ms; worker"
            f" {webhook['webhook'].get('worker_cpu_ms_per_request')} ms/event",
            cpu_ratio <= 2,
        ),
        (
            "webhook p99 <= 50 ms at 50 events/s",
            f"{webhook['at_rate']['p99_ms']} ms",
            f"p50 {webhook['at_rate']['p50_ms']} ms",
            webhook["at_rate"]["p99_ms"] <= 50,
        ),
    ]


def verdicts(results: dict) -> list[tuple[str, str, str, bool]]:
    if "wire" not in results:
        return webhook_verdicts(results)
    wire = results["wire"]["p50_ms"]
    pop = results["screen_pop_200"]
    pop_k = results.get("screen_pop_1000")
    light = pop["one_previous_call"]["p50_ms"]
    heavy = pop["10000_previous_calls"]["p50_ms"]
    ratio = heavy / light if light and heavy else float("inf")
    took = results["took_ms"]["p50_ms"]
    screen_pop_rows = [
        (
            "screen-pop p50 <= 3x the wire p50",
            f"{pop['all']['p50_ms']} ms",
            f"{pop['all']['p50_ms'] / wire:.1f}x of wire {wire} ms",
            pop["all"]["p50_ms"] <= 3 * wire,
        ),
        (
            "screen-pop p99 <= 100 ms, 20 calls/s, 200 sockets",
            f"{pop['all']['p99_ms']} ms",
            f"wire p99 {results['wire']['p99_ms']} ms; CPU/call {pop['rapport_cpu_ms_per_call']}"
            f" ms + PG/Redis {pop['postgres_redis_cpu_ms_per_call']} ms;"
            f" {pop['all']['count']}/{pop['all']['calls']}"
            " offered",
            pop["all"]["p99_ms"] <= 100 and pop["all"]["count"] == pop["all"]["calls"],
        ),
        (
            "10,000-call caller / 1-call caller p50 <= 1.2",
            f"{ratio:.2f}",
            f"{heavy} / {light} ms",
            ratio <= 1.2,
        ),
        (
            "router took_ms p50 <= 8 ms",
            f"{took} ms",
            f"p99 {results['took_ms']['p99_ms']}",
            took is not None and took <= 8,
        ),
    ]
    if pop_k is None:
        # `--only screen-pop`: the phases after it did not run.
        return screen_pop_rows
    return [
        *screen_pop_rows,
        *webhook_verdicts(results),
        (
            "memory per socket < 200 KiB (1,000 sockets)",
            f"{results['memory']['kib_per_socket']} KiB",
            f"RSS {results['memory']['rss_kib_1000_sockets'] // 1024} MiB",
            results["memory"]["kib_per_socket"] < 200,
        ),
        (
            "screen-pop p99 <= 100 ms, 1,000 sockets",
            f"{pop_k['all']['p99_ms']} ms",
            f"p50 {pop_k['all']['p50_ms']} ms; {pop_k['all']['count']}/{pop_k['all']['calls']}"
            " offered",
            pop_k["all"]["p99_ms"] <= 100 and pop_k["all"]["count"] == pop_k["all"]["calls"],
        ),
        (
            "1,000 sockets close at once, no error",
            f"{results['disconnect_all']['server_error_lines']} error lines",
            f"{results['disconnect_all']['client_errors']} client errors",
            results["disconnect_all"]["server_error_lines"] == 0
            and results["disconnect_all"]["client_errors"] == 0,
        ),
        (
            "idle: Rapport processes < 2% of a core",
            f"{results['idle']['rapport_percent_of_a_core']}%",
            f"PostgreSQL + Redis {results['idle']['postgres_redis_percent_of_a_core']}%",
            results["idle"]["rapport_percent_of_a_core"] < 2,
        ),
    ]


def main() -> None:
    global OPTIONS, STATE_DIR
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5 s phases instead of 10 s")
    parser.add_argument("--rate", type=float, default=20, help="calls per second")
    parser.add_argument("--worker-processes", type=int, default=2)
    parser.add_argument(
        "--pool", default="prefork", choices=["prefork", "threads", "solo"], help="Celery pool"
    )
    parser.add_argument(
        "--only",
        choices=["webhook", "screen-pop"],
        help="run one phase alone (the same processes and data; its goals only): webhook, or"
        " screen-pop (the wire and the 200-socket screen-pop, about a minute)",
    )
    parser.add_argument(
        "--profile-worker",
        metavar="FILE",
        help="run the Celery worker under py-spy, its samples (collapsed stacks) to FILE",
    )
    parser.add_argument(
        "--wire-layer",
        choices=["stock", "rapport"],
        default="stock",
        help="the bare app's channel layer: channels-redis as shipped, or Rapport's subclass",
    )
    parser.add_argument(
        "--profile-server",
        metavar="FILE",
        help="run uvicorn under py-spy, its samples (collapsed stacks) to FILE",
    )
    parser.add_argument(
        "--rate-limit",
        default="100000/s",
        help="TELEPHONY_RATE_LIMIT: the throttle runs on every event as in production (whose"
        " default is 200/s), set high so the full-speed phase is never refused; '' turns it off",
    )
    parser.add_argument("--fill", action="store_true", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.fill:
        print(json.dumps(fill_database()))
        return
    options.seconds = 5 if options.quick else 10
    options.idle_seconds = 10 if options.quick else 20
    OPTIONS = options
    _raise_file_limit()
    load_before = uptime()
    print("load:", load_before, flush=True)

    secret = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
    STATE_DIR = RUNTIME_DIR / "bench-goals"
    with embedded_services(STATE_DIR) as urls:
        env = {
            **os.environ,
            **urls,
            "DEBUG": "0",
            "SECRET_KEY": secrets.token_urlsafe(50),
            "INSECURE_HTTP": "1",
            "LOG_LEVEL": "WARNING",
            "TELEPHONY_WEBHOOK_SECRET": secret,
            "TELEPHONY_RATE_LIMIT": options.rate_limit,
            "TELEPHONY_CONTROL_URL": "",
            "CELERY_QUEUE": BROKER_QUEUE,
            "CHANNELS_PREFIX": "bench-goals",
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
        port, bare_port = _free_port(), _free_port()
        rapport_url, bare_url = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{bare_port}"
        log = STATE_DIR / "uvicorn.log"
        log_file = log.open("w")
        uvicorn = [python, "-m", "uvicorn", "--host", "127.0.0.1", "--no-access-log"]

        def under_py_spy(out: str | None) -> list[str]:
            if not out:
                return []
            # --gil: only samples holding the GIL, i.e. Python using the CPU, not waiting.
            sampling = ["--subprocesses", "--gil", "-r", "100", "-f", "raw", "-o", out, "--"]
            return [str(Path(python).parent / "py-spy"), "record", *sampling]

        profiler = under_py_spy(options.profile_worker)
        processes = {
            "uvicorn": subprocess.Popen(
                [
                    *under_py_spy(options.profile_server),
                    *uvicorn,
                    "rapport.asgi:application",
                    *("--port", str(port), "--lifespan", "off"),
                ],
                cwd=ROOT,
                env={**env, "DB_POOL_MAX_SIZE": "8"},
                stdout=log_file,
                stderr=subprocess.STDOUT,
            ),
            "bare": subprocess.Popen(
                [
                    *uvicorn,
                    "bench.bare_app:app",
                    "--port",
                    str(bare_port),
                    "--log-level",
                    "warning",
                ],
                cwd=ROOT,
                env={**env, "BARE_LAYER": options.wire_layer},
            ),
            "worker": subprocess.Popen(
                [
                    *profiler,
                    *(python, "-m", "celery", "-A", "rapport", "worker", "-P", options.pool),
                    *("-c", str(options.worker_processes), "--loglevel", "WARNING"),
                    *("--without-gossip", "--without-mingle", "--without-heartbeat"),
                ],
                cwd=ROOT,
                env=env,
            ),
            "beat": subprocess.Popen(
                [
                    *(python, "-m", "celery", "-A", "rapport", "beat", "--loglevel", "WARNING"),
                    *("--schedule", str(STATE_DIR / "celerybeat-schedule")),
                ],
                cwd=ROOT,
                env=env,
            ),
        }
        try:
            offer_latency._wait_for_server(rapport_url, processes["uvicorn"])
            pids = {name: process.pid for name, process in processes.items()}
            results = asyncio.run(drive(urls, rapport_url, bare_url, secret, sessions, pids, log))
        finally:
            for process in processes.values():
                # py-spy writes its samples on SIGINT, not on SIGTERM.
                process.send_signal(
                    signal.SIGINT if process.args[0].endswith("py-spy") else signal.SIGTERM
                )
            for process in processes.values():
                try:
                    process.wait(20)
                except subprocess.TimeoutExpired:
                    process.kill()

    results["load_before"] = load_before
    results["load_after"] = uptime()
    results["options"] = {k: v for k, v in vars(options).items() if k != "fill"}
    results["taken_at"] = datetime.now(tz=UTC).isoformat()
    rows = verdicts(results)
    results["verdicts"] = [
        {"goal": g, "figure": f, "anchor": a, "pass": ok} for g, f, a, ok in rows
    ]
    print(f"\n{'goal':<52}{'figure':>18}  {'verdict':<6}  anchor / detail")
    for goal, figure, anchor, ok in rows:
        print(f"{goal:<52}{figure:>18}  {'PASS' if ok else 'MISS':<6}  {anchor}")
    print(f"\nload before: {load_before}\nload after:  {results['load_after']}")
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"goals-{datetime.now(tz=UTC):%Y%m%dT%H%M%SZ}.json"
    path.write_text(json.dumps(results, indent=2))
    print(f"written to {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
