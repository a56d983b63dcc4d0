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
     (a trivial Django view, `bench/urls.py`) on the same server, both at full speed, each once
     the worker has caught up with what came before (the worker's CPU per event, applying them,
     is printed beside); p99 at 50 events/s;
  4. scale: 800 more agent sockets (1,000 on the one ASGI process), its memory per socket, the
     screen-pop again at `--rate` calls/s;
  5. idle: no calls (1,000 sockets still open), CPU of every Rapport process;
  6. all 1,000 sockets close at once: errors in the server's log.

    .venv/bin/python bench/goals.py [--quick] [--only webhook|screen-pop]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import secrets
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import psutil
import redis.asyncio
import websockets

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import PING_PATH, servers  # noqa: E402
from bench.events import (  # noqa: E402
    EVENTS_PATH,
    WEBHOOK_QUEUE,
    Signer,
    WholeCalls,
    callers,
    ended,
    hang_up_all,
    now,
    ring,
    statuses,
)
from bench.figures import cpu_seconds, routing_figures, service_pids, summary  # noqa: E402
from bench.fleet import Agents, Fleet  # noqa: E402
from bench.load import flat_out, paced  # noqa: E402

# The embedded services' folder, and the Celery queue and channel prefix of the run.
STATE = "bench-goals"
TEAM = 1000
FIRST_TEAM = 200


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def _raise_file_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 20000), hard))


def patient_agents(base_url: str) -> Agents:
    """Two minutes to connect (800 sockets on a loaded machine); the sockets do not ping the
    server (a browser's never do), so the idle figure is the server's."""
    return Agents(base_url, open_timeout=60, ping_interval=None, ready_within=120)


# ---------------------------------------------------------------------------------------------
# 1. The wire


async def bare_round_trip(base_url: str, *, sockets: int, rate: float, seconds: float) -> dict:
    ws_base = base_url.replace("http://", "ws://")
    groups = [f"g{n}" for n in range(sockets)]
    fleet = Fleet()
    await fleet.open(websockets.connect(f"{ws_base}/ws/{group}") for group in groups)
    # channels-redis adds a group member asynchronously to the socket's accept.
    await asyncio.sleep(1)
    async with httpx.AsyncClient(base_url=base_url, limits=httpx.Limits(max_connections=32)) as c:

        def sender(sent: dict[str, float]):
            async def one(index: int, scheduled: float) -> None:
                token = f"m{index}-{secrets.token_hex(4)}"
                fleet.waiter(token)
                sent[token] = time.perf_counter()
                await c.post(f"/send/{groups[index % sockets]}", content=token)
                await fleet.wait_for([token], timeout=10)

            return one

        await paced(sender({}), count=int(rate), rate=rate)
        sent: dict[str, float] = {}
        await paced(sender(sent), count=int(rate * seconds), rate=rate)
        latencies = [(fleet.arrived[t] - sent[t]) * 1000 for t in sent if t in fleet.arrived]
    await fleet.close(all_at_once=True)
    return {**summary(latencies), "sent": int(rate * seconds)}


# ---------------------------------------------------------------------------------------------
# 2. and 4. Screen-pop


async def screen_pop(
    client: httpx.AsyncClient,
    signer: Signer,
    agents: Agents,
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
    rapport_pids, services = cpu
    cpu_before = (cpu_seconds(rapport_pids), cpu_seconds(services))
    each_before = {pid: cpu_seconds([pid]) for pid in rapport_pids}
    count = int(rate * seconds)
    rings = await ring(client, signer, agents, name=name, rate=rate, seconds=seconds)
    results: dict = {
        "statuses": statuses(rings),
        "rapport_cpu_ms_per_call": round(
            (cpu_seconds(rapport_pids) - cpu_before[0]) / count * 1000, 1
        ),
        "postgres_redis_cpu_ms_per_call": round(
            (cpu_seconds(services) - cpu_before[1]) / count * 1000, 1
        ),
        # uvicorn (webhook and sockets), the Celery worker (the router), beat: in `cpu`'s order.
        "cpu_ms_per_call_by_process": [
            round((cpu_seconds([pid]) - used) / count * 1000, 1)
            for pid, used in each_before.items()
        ],
    }
    everyone = []
    for kind in callers():
        latencies = [
            (agents.arrived[call_id] - each.sent) * 1000
            for call_id, each in rings.items()
            if each.kind == kind and call_id in agents.arrived
        ]
        everyone += latencies
        results[kind] = summary(latencies)
    results["all"] = {**summary(everyone), "calls": count}
    await hang_up_all(client, signer, list(rings))
    return results


def took_ms(database_url: str, name: str) -> dict:
    figures = routing_figures(database_url, f"{name}-%")
    return {
        "p50_ms": figures["took_p50_ms"],
        "p99_ms": figures["took_p99_ms"],
        "decisions": figures["decisions"],
    }


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
    signer = Signer(secret)
    events = WholeCalls(signer, run_id=secrets.token_hex(3), queue=WEBHOOK_QUEUE)
    limits = httpx.Limits(max_connections=8, max_keepalive_connections=8)
    # Events sent per call: ringing, answered, ended (3: the call is over).
    events_sent: dict[str, int] = {}

    async def post(client: httpx.AsyncClient, request: tuple[bytes, dict[str, str]]) -> int:
        body, headers = request
        response = await client.post(EVENTS_PATH, content=body, headers=headers)
        call_id = json.loads(body)["call_id"]
        events_sent[call_id] = events_sent.get(call_id, 0) + 1
        return response.status_code

    async def full_speed(path: str, requests: list | None) -> dict:
        position = iter(requests or ())
        async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=30) as client:

            async def send() -> int | None:
                if requests is None:
                    return (await client.get(path)).status_code
                request = next(position, None)
                return None if request is None else await post(client, request)

            before = cpu_seconds([server_pid])
            counted, elapsed = await flat_out(send, senders=8, seconds=seconds)
            used = cpu_seconds([server_pid]) - before
        done = sum(counted.values())
        return {
            "requests": done,
            "per_second": round(done / elapsed, 1),
            "server_cpu_ms_per_request": round(used / max(done, 1) * 1000, 2),
            "statuses": counted,
        }

    async def fixed(requests: list) -> dict:
        latencies: list[float] = []
        counted: dict[int, int] = {}
        async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=30) as client:
            await asyncio.gather(*(client.get(PING_PATH) for _ in range(8)))

            async def one(index: int, scheduled: float) -> None:
                status = await post(client, requests[index])
                latencies.append((time.perf_counter() - scheduled) * 1000)
                counted[status] = counted.get(status, 0) + 1

            await paced(one, count=len(requests), rate=rate)
        return {**summary(latencies), "rate": rate, "statuses": counted}

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
        signer.request(ended(call_id, "completed", occurred_at=now()))
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
    start = time.perf_counter()
    broker = redis.asyncio.Redis.from_url(redis_url)
    try:
        while await broker.llen(STATE) and time.perf_counter() - start < timeout:
            await asyncio.sleep(0.05)
    finally:
        await broker.aclose()
    await asyncio.sleep(0.5)
    return round(time.perf_counter() - start - 0.5, 2)


def rss_kib(pid: int) -> int:
    return psutil.Process(pid).memory_info().rss // 1024


async def drive(
    options, urls: dict, rapport_url: str, bare_url: str, secret: str, sessions, pids, log
):
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
    agents = patient_agents(rapport_url)
    await agents.sign_in(sessions[:FIRST_TEAM])
    await tasks_drained(urls["REDIS_URL"])
    limits = httpx.Limits(max_connections=32)
    async with httpx.AsyncClient(base_url=rapport_url, limits=limits, timeout=30) as client:
        await screen_pop(client, signer, agents, name="warmup", rate=options.rate, seconds=2)
        state = servers.state_dir(STATE)
        cpu = ([pids["uvicorn"], pids["worker"], pids["beat"]], service_pids(state))
        results["screen_pop_200"] = await screen_pop(
            client, signer, agents, name="pop200", rate=options.rate, seconds=seconds, cpu=cpu
        )
        results["took_ms"] = took_ms(urls["DATABASE_URL"], "pop200")
        print("screen-pop, 200 sockets:", json.dumps(results["screen_pop_200"]), flush=True)
        if options.only == "screen-pop":
            await agents.close(all_at_once=True)
            return results

        results["webhook"] = await webhook_cost(
            rapport_url, secret, pids["uvicorn"], pids["worker"], seconds=seconds, rate=50
        )
        print("webhook:", json.dumps(results["webhook"]), flush=True)
        await asyncio.sleep(2)

        rss_before = rss_kib(pids["uvicorn"])
        await agents.sign_in(sessions[FIRST_TEAM:TEAM])
        await asyncio.sleep(1)
        rss_after = rss_kib(pids["uvicorn"])
        # 800 agents ready at once: a look for a waiting caller each, queued before any call.
        results["ready_800_drained_s"] = await tasks_drained(urls["REDIS_URL"])
        results["memory"] = {
            "rss_kib_200_sockets": rss_before,
            "rss_kib_1000_sockets": rss_after,
            "kib_per_socket": round((rss_after - rss_before) / (TEAM - FIRST_TEAM), 1),
        }
        results["screen_pop_1000"] = await screen_pop(
            client, signer, agents, name="pop1000", rate=options.rate, seconds=seconds, cpu=cpu
        )
        print("screen-pop, 1000 sockets:", json.dumps(results["screen_pop_1000"]), flush=True)

    await asyncio.sleep(3)
    idle_pids = [pids["uvicorn"], pids["worker"], pids["beat"]]
    services = service_pids(servers.state_dir(STATE))
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
    closed = await agents.close(all_at_once=True)
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
    options = parser.parse_args()
    options.seconds = 5 if options.quick else 10
    options.idle_seconds = 10 if options.quick else 20
    _raise_file_limit()
    load_before = uptime()
    print("load:", load_before, flush=True)

    secret = servers.new_webhook_secret()
    state = servers.state_dir(STATE)
    with servers.migrated(
        STATE, TELEPHONY_WEBHOOK_SECRET=secret, TELEPHONY_RATE_LIMIT=options.rate_limit
    ) as (urls, env):
        sessions = servers.fill(env, "--team", str(TEAM), "--webhook")["sessions"]
        port, rapport_url = servers.local_port()
        bare_port, bare_url = servers.local_port()
        log = state / "uvicorn.log"
        log_file = log.open("w")
        processes = {
            "uvicorn": servers.start(
                [
                    *servers.under_py_spy(options.profile_server),
                    *servers.uvicorn(
                        "rapport.asgi:application", port, "--no-access-log", "--lifespan", "on"
                    ),
                ],
                {**env, "DB_POOL_MAX_SIZE": "8"},
                stdout=log_file,
                stderr=subprocess.STDOUT,
            ),
            "bare": servers.start(
                servers.uvicorn(
                    "bench.bare_app:app", bare_port, "--no-access-log", "--log-level", "warning"
                ),
                {**env, "BARE_LAYER": options.wire_layer},
            ),
            "worker": servers.start(
                [
                    *servers.under_py_spy(options.profile_worker),
                    *servers.celery_worker(pool=options.pool, processes=options.worker_processes),
                ],
                env,
            ),
            "beat": servers.start(servers.celery_beat(state), env),
        }
        try:
            servers.wait_until_answering(rapport_url, processes["uvicorn"])
            pids = {name: process.pid for name, process in processes.items()}
            results = asyncio.run(
                drive(options, urls, rapport_url, bare_url, secret, sessions, pids, log)
            )
        finally:
            servers.stop(list(processes.values()))

    results["load_before"] = load_before
    results["load_after"] = uptime()
    results["options"] = vars(options)
    results["taken_at"] = datetime.now(tz=UTC).isoformat()
    rows = verdicts(results)
    results["verdicts"] = [
        {"goal": g, "figure": f, "anchor": a, "pass": ok} for g, f, a, ok in rows
    ]
    print(f"\n{'goal':<52}{'figure':>18}  {'verdict':<6}  anchor / detail")
    for goal, figure, anchor, ok in rows:
        print(f"{goal:<52}{figure:>18}  {'PASS' if ok else 'MISS':<6}  {anchor}")
    print(f"\nload before: {load_before}\nload after:  {results['load_after']}")
    servers.write_results("goals", results)


if __name__ == "__main__":
    main()
