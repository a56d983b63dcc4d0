"""Supervisor dashboard benchmark: 50 queues, 500 agents, 50 changes a second, one wall screen.

Starts embedded PostgreSQL and Redis under `.rapport/bench-supervisor` (unless DATABASE_URL /
REDIS_URL are set), migrates, seeds 50 queues, 500 agents and a morning of calls, starts
`uvicorn rapport.asgi:application` and connects a supervisor's WebSocket to `/ws/supervisor/`.
Then, for `--seconds`, a producer thread makes `--rate` real changes a second (a caller arrives,
an agent answers, a call ends, an agent goes on break and comes back), each followed by the
`figures.changed` ping the services send on commit. It reports the frames the screen received
(per second, the busiest second, their size), the server process's CPU (psutil), and how long
one full recompute of the figures takes.

    .venv/bin/python bench/supervisor_bench.py [--rate 50] [--seconds 20]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import servers  # noqa: E402
from bench.figures import cpu_seconds, percentile  # noqa: E402
from bench.fleet import session_keys, signed_in  # noqa: E402

STATE = "bench-supervisor"
QUEUES = 50
AGENTS = 500
QUEUES_PER_AGENT = 3
MORNING_CALLS = 3000


def seed():
    """A fresh team and a morning of calls. Returns the supervisor (a user)."""
    from django.contrib.auth.models import Group, User
    from django.utils import timezone

    from routing.models import Agent, Call, DecisionReason, Queue, RoutingDecision

    Call.objects.all().delete()
    Agent.objects.all().delete()
    User.objects.filter(username__startswith="bench-").delete()
    Queue.objects.filter(slug__startswith="bench-").delete()

    queues = Queue.objects.bulk_create(
        Queue(slug=f"bench-{n}", name=f"Queue {n:02d}") for n in range(QUEUES)
    )
    users = User.objects.bulk_create(User(username=f"bench-agent-{n}") for n in range(AGENTS))
    statuses = ["available", "busy", "wrap_up", "break", "offline"]
    agents = Agent.objects.bulk_create(
        Agent(
            user=user,
            display_name=f"Agent {n:03d}",
            telephony_identity=f"bench-{n}",
            status=statuses[n % 5],
        )
        for n, user in enumerate(users)
    )
    Agent.queues.through.objects.bulk_create(
        Agent.queues.through(agent=agent, queue=queues[(n + k) % QUEUES])
        for n, agent in enumerate(agents)
        for k in range(QUEUES_PER_AGENT)
    )
    now = timezone.now()
    start = max(
        timezone.localtime(now).replace(hour=0, minute=0, second=0), now - timedelta(hours=6)
    )
    rng = random.Random(6)
    calls = []
    for n in range(MORNING_CALLS):
        queued = start + (now - start) * (n / MORNING_CALLS)
        answered = rng.random() > 0.06
        wait = timedelta(seconds=rng.expovariate(1 / 12))
        calls.append(
            Call(
                telephony_call_id=f"bench-morning-{n}",
                queue=queues[n % QUEUES],
                agent=agents[rng.randrange(AGENTS)] if answered else None,
                last_agent=agents[rng.randrange(AGENTS)] if n % 3 == 0 else None,
                state="ended" if answered else "abandoned",
                created_at=queued,
                queued_at=queued,
                connected_at=queued + wait if answered else None,
                ended_at=queued + wait + timedelta(minutes=5),
            )
        )
    calls = Call.objects.bulk_create(calls)
    RoutingDecision.objects.bulk_create(
        RoutingDecision(call=call, reason=DecisionReason.LAST_AGENT_UNAVAILABLE, decided_at=now)
        for call in calls
        if call.last_agent_id and call.last_agent_id != call.agent_id
    )
    supervisor, _ = User.objects.get_or_create(username="bench-supervisor")
    supervisor.groups.add(Group.objects.get_or_create(name="supervisor")[0])
    return supervisor


class Producer(threading.Thread):
    """Real changes at a fixed rate, each pinging the supervisors' group after commit."""

    def __init__(self, rate: float, seconds: float) -> None:
        super().__init__(daemon=True)
        self.rate, self.seconds = rate, seconds
        self.done = Counter()
        self.late_ms: list[float] = []

    def run(self) -> None:
        from django.db import connection

        try:
            self._run()
        finally:
            connection.close()

    def _run(self) -> None:
        from django.db import transaction
        from django.utils import timezone

        from infrastructure.broadcast import notify_supervisors
        from routing.models import Agent, Call, Queue

        rng = random.Random(50)
        queue_ids = list(
            Queue.objects.filter(slug__startswith="bench-").values_list("id", flat=True)
        )
        serial = 0
        started = time.perf_counter()
        total = int(self.rate * self.seconds)
        for index in range(total):
            scheduled = started + index / self.rate
            time.sleep(max(0.0, scheduled - time.perf_counter()))
            self.late_ms.append((time.perf_counter() - scheduled) * 1000)
            kind = ("arrive", "answer", "end", "status")[index % 4]
            now = timezone.now()
            with transaction.atomic():
                if kind == "arrive":
                    serial += 1
                    call = Call.objects.create(
                        telephony_call_id=f"bench-live-{time.time_ns()}-{serial}",
                        queue_id=rng.choice(queue_ids),
                        state="queued",
                        queued_at=now,
                    )
                    notify_supervisors(queue_id=call.queue_id)
                elif kind == "answer":
                    call = Call.objects.filter(state="queued").order_by("queued_at").first()
                    agent = Agent.objects.filter(status="available").order_by("?").first()
                    if call and agent:
                        Call.objects.filter(id=call.id).update(
                            state="connected", agent=agent, connected_at=now
                        )
                        Agent.objects.filter(id=agent.id).update(
                            status="busy", status_changed_at=now
                        )
                        notify_supervisors(queue_id=call.queue_id, agent_id=agent.id)
                elif kind == "end":
                    call = Call.objects.filter(state="connected").order_by("connected_at").first()
                    if call:
                        Call.objects.filter(id=call.id).update(state="ended", ended_at=now)
                        Agent.objects.filter(id=call.agent_id).update(
                            status="available", status_changed_at=now
                        )
                        notify_supervisors(queue_id=call.queue_id, agent_id=call.agent_id)
                else:
                    agent = Agent.objects.filter(status__in=["available", "break"]).order_by("?")
                    agent = agent.first()
                    if agent:
                        flipped = "break" if agent.status == "available" else "available"
                        Agent.objects.filter(id=agent.id).update(
                            status=flipped, status_changed_at=now
                        )
                        notify_supervisors(agent_id=agent.id)
            self.done[kind] += 1


async def watch(base_url: str, session_key: str, seconds: float, producer: Producer) -> dict:
    frames: list[tuple[float, int]] = []
    async with signed_in(base_url, "/ws/supervisor/", session_key, max_size=None) as socket_:
        opened = time.perf_counter()
        snapshot = await socket_.recv()
        snapshot_ms = (time.perf_counter() - opened) * 1000
        producer.start()
        started = time.perf_counter()
        deadline = started + seconds + 1.0
        while (left := deadline - time.perf_counter()) > 0:
            try:
                message = await asyncio.wait_for(socket_.recv(), timeout=left)
            except TimeoutError:
                break
            frames.append((time.perf_counter() - started, len(message)))
        elapsed = time.perf_counter() - started
    per_second = Counter(int(at) for at, _ in frames)
    return {
        "snapshot_ms": round(snapshot_ms, 1),
        "snapshot_bytes": len(snapshot),
        "frames": len(frames),
        "frames_per_second": round(len(frames) / elapsed, 2),
        "busiest_second_frames": max(per_second.values()) if per_second else 0,
        "frame_bytes_mean": round(statistics.mean(size for _, size in frames)) if frames else 0,
        "seconds": round(elapsed, 2),
    }


def recompute_ms(samples: int = 15) -> dict:
    from django.db import connection

    from supervisor import wall

    timings = []
    for _ in range(samples):
        started = time.perf_counter()
        wall.figures()
        timings.append((time.perf_counter() - started) * 1000)
    queries = []
    with connection.execute_wrapper(lambda execute, *args: queries.append(1) or execute(*args)):
        wall.figures()
    return {
        "median_ms": round(statistics.median(timings), 1),
        "max_ms": round(max(timings), 1),
        "queries": len(queries),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=50, help="changes per second")
    parser.add_argument("--seconds", type=float, default=20)
    options = parser.parse_args()

    with servers.django_in_this_process(STATE, name=STATE):
        from django.conf import settings
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        [session_key] = session_keys([seed()])
        figures_cost = recompute_ms()

        port, base_url = servers.local_port()
        flags = ("--lifespan", "on", "--no-access-log")
        server = servers.start(
            servers.uvicorn("rapport.asgi:application", port, *flags),
            dict(os.environ),
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            servers.wait_until_answering(base_url, server)
            cpu_before = cpu_seconds([server.pid])
            wall_before = time.perf_counter()
            producer = Producer(options.rate, options.seconds)
            screen = asyncio.run(watch(base_url, session_key, options.seconds, producer))
            producer.join(timeout=30)
            server_cpu = cpu_seconds([server.pid]) - cpu_before
            wall = time.perf_counter() - wall_before
        finally:
            servers.stop([server])

    events = sum(producer.done.values())
    result = {
        "benchmark": "supervisor",
        "at": datetime.now(tz=UTC).isoformat(),
        "machine": {"cpus": os.cpu_count(), "note": "cores shared with other work"},
        "setup": {
            "queues": QUEUES,
            "agents": AGENTS,
            "morning_calls": MORNING_CALLS,
            "rate": options.rate,
            "seconds": options.seconds,
            "coalesce_seconds": 0.3,
            "time_zone": settings.TIME_ZONE,
        },
        "events": {
            "sent": events,
            "per_second": round(events / options.seconds, 1),
            "by_kind": dict(producer.done),
            "producer_late_p99_ms": round(percentile(sorted(producer.late_ms), 99), 1),
        },
        "screen": screen,
        "server_cpu": {
            "cpu_seconds": round(server_cpu, 2),
            "percent_of_one_core": round(100 * server_cpu / wall, 1),
        },
        "figures_recompute": figures_cost,
    }
    print(json.dumps(result, indent=2))
    print(
        f"\n{events} changes in {options.seconds:.0f} s -> {screen['frames']} frames "
        f"({screen['frames_per_second']}/s, busiest second {screen['busiest_second_frames']}), "
        f"frame {screen['frame_bytes_mean'] / 1024:.0f} KiB; server CPU "
        f"{result['server_cpu']['percent_of_one_core']}% of one core; one recompute "
        f"{figures_cost['median_ms']} ms in {figures_cost['queries']} queries"
    )
    servers.write_results("supervisor", result)


if __name__ == "__main__":
    main()
