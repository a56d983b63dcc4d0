"""Shared by the router's tests: real Celery worker processes against the test database, and
the telephony system's side of a call (arrive, answer, hang up) done the way the webhook does."""

from __future__ import annotations

import ast
import itertools
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import redis
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from rapport.celery import app as celery_app
from routing import router
from routing.models import Agent, Call, Queue
from routing.states import CallState

_call_numbers = itertools.count(1)


def database_url_for_workers() -> str:
    """DATABASE_URL with the test database's name: what this test run's data lives in.

    Between tests pytest-django empties the tables with one TRUNCATE, which can deadlock with a
    worker transaction that read one table and waits for the next; a short lock_timeout makes
    the worker's statement give way first (the router retries, the sweeper redoes it)."""
    url = urlsplit(os.environ["DATABASE_URL"])
    query = parse_qsl(url.query) + [("options", "-c lock_timeout=300")]
    return urlunsplit(
        url._replace(path="/" + connection.settings_dict["NAME"], query=urlencode(query))
    )


@contextmanager
def celery_queue(name: str) -> Iterator[str]:
    """This test process publishes to `name`, the queue its own workers consume."""
    previous = celery_app.conf.task_default_queue
    celery_app.conf.task_default_queue = name
    try:
        yield name
    finally:
        celery_app.conf.task_default_queue = previous


@contextmanager
def tasks_published() -> Iterator[list[tuple[str, tuple]]]:
    """What this process publishes while the block runs, as (task name, args), read back from the
    real broker when the block ends: the tasks go to a queue of their own, which nobody consumes."""
    published: list[tuple[str, tuple]] = []
    with celery_queue(f"published-{os.getpid()}-{next(_call_numbers)}") as queue:
        yield published
    broker = redis.Redis.from_url(settings.REDIS_URL)
    for raw in reversed(broker.lrange(queue, 0, -1)):
        headers = json.loads(raw)["headers"]
        published.append((headers["task"], ast.literal_eval(headers["argsrepr"])))
    broker.delete(queue)


class Workers:
    """`celery worker` processes (prefork) with beat and the router's sweeper, killable."""

    def __init__(self, *, queue: str, schedule_dir: Path, concurrency: int, beat: bool) -> None:
        self.queue = queue
        self.schedule_dir = schedule_dir
        self.concurrency = concurrency
        self.beat = beat
        self.process: subprocess.Popen | None = None
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        env = {
            **os.environ,
            "DATABASE_URL": database_url_for_workers(),
            "CELERY_QUEUE": self.queue,
            "ROUTER_SWEEP_SECONDS": "0.5",
            "LOG_LEVEL": "WARNING",
        }
        command = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "rapport",
            "--quiet",
            "worker",
            "-P",
            "prefork",
            "-c",
            str(self.concurrency),
            "--loglevel",
            "WARNING",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "-n",
            f"{self.queue}-{self.starts}@%h",
        ]
        if self.beat:
            command += ["-B", "--schedule", str(self.schedule_dir / f"beat-{self.starts}")]
        self.process = subprocess.Popen(
            command, env=env, cwd=settings.BASE_DIR, start_new_session=True
        )

    def child_pids(self) -> list[int]:
        if self.process is None:
            return []
        found = subprocess.run(
            ["pgrep", "-P", str(self.process.pid)], capture_output=True, text=True
        ).stdout
        return [int(pid) for pid in found.split()]

    def kill_hard(self) -> None:
        """kill -9 of the whole worker: main process, pool processes and beat together."""
        if self.process is None:
            return
        with suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)
        self.process = None

    def stop(self) -> None:
        # Tests need no graceful shutdown: whatever a worker held is redelivered or swept.
        self.kill_hard()


@contextmanager
def running_workers(tmp_dir: Path, *, concurrency: int = 1, beat: bool = True) -> Iterator[Workers]:
    with celery_queue(f"router-test-{os.getpid()}-{next(_call_numbers)}") as queue:
        workers = Workers(queue=queue, schedule_dir=tmp_dir, concurrency=concurrency, beat=beat)
        workers.start()
        try:
            yield workers
        finally:
            workers.stop()


@contextmanager
def solo_worker(
    env: dict[str, str], workdir: Path, *, beat: bool = False
) -> Iterator[subprocess.Popen]:
    """One `celery worker -P solo` (with `beat`, the sweeper too) in `env`, logging to
    `workdir/worker.log`; yielded once it is ready, stopped after."""
    log = workdir / "worker.log"
    command = [sys.executable, "-m", "celery", "-A", "rapport", "worker", "-P", "solo"]
    if beat:
        command += ["-B", "--schedule", str(workdir / "beat")]
    command += ["--without-gossip", "--without-mingle", "--without-heartbeat"]
    process = subprocess.Popen(
        [*command, "--logfile", str(log)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        wait_until(lambda: log.exists() and "ready." in log.read_text(), timeout=60, every=0.2)
        yield process
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


FAST_PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def wait_until(check: Callable[[], object], *, timeout: float = 10.0, every: float = 0.05):
    """Poll `check` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"still not true after {timeout} s: {check.__doc__ or check}")
        time.sleep(every)


# --- the telephony system's side, as the webhook applies it -----------------------------------


def arrive(
    *, queue: Queue, customer=None, number: str = "+14155550123", publish: bool = True
) -> Call:
    """A call reaches `queue` and, like the webhook, is handed to the router (`routing.route_call`
    sent on commit). Without `publish` the hand-off is lost: the call waits with no message."""
    with transaction.atomic():
        call = Call.objects.create(
            telephony_call_id=f"CA{next(_call_numbers):06d}-{os.getpid()}",
            from_number=number,
            from_e164=number,
            queue=queue,
            customer=customer,
            state=CallState.QUEUED,
            ringing_at=timezone.now(),
            queued_at=timezone.now(),
        )
        if publish:
            router.call_arrived(call)
    return call


def calls_arriving_at_once(queue: Queue, count: int, *, customers=()) -> list[int]:
    """One burst: `count` calls committed together, each handed to the router (the
    `routing.route_call` messages go out at commit), the first ones from `customers`."""
    burst = next(_call_numbers)
    with transaction.atomic():
        calls = Call.objects.bulk_create(
            Call(
                telephony_call_id=f"BURST{burst}-{n:04d}-{os.getpid()}",
                from_e164=f"+1415556{n:04d}",
                queue=queue,
                customer=customers[n] if n < len(customers) else None,
                state=CallState.QUEUED,
            )
            for n in range(count)
        )
        for call in calls:
            router.call_arrived(call)
    return [call.id for call in calls]


def answer(call: Call, agent: Agent) -> Call:
    with transaction.atomic():
        call = Call.objects.select_for_update().get(id=call.id)
        call.state = CallState.CONNECTED
        call.agent = agent
        call.connected_at = timezone.now()
        call.save(update_fields=["state", "agent", "connected_at"])
        router.call_answered(call)
    return call


def hang_up(call: Call) -> Call:
    with transaction.atomic():
        call = Call.objects.select_for_update().get(id=call.id)
        call.state = CallState.ENDED if call.connected_at else CallState.ABANDONED
        call.ended_at = timezone.now()
        call.save(update_fields=["state", "ended_at"])
        router.call_ended(call)
    return call


def past_call(*, customer, agent: Agent, queue: Queue, days_ago: float = 1) -> Call:
    """A finished call of `customer` with `agent`: it makes `agent` their last agent."""
    moment = timezone.now() - timezone.timedelta(days=days_ago)
    return Call.objects.create(
        telephony_call_id=f"PAST{next(_call_numbers):06d}-{os.getpid()}",
        from_e164="+14155550123",
        queue=queue,
        customer=customer,
        agent=agent,
        state=CallState.ENDED,
        queued_at=moment,
        connected_at=moment,
        ended_at=moment + timezone.timedelta(minutes=5),
    )


def prepared_statements() -> list[str]:
    """The statements prepared on the server for this test's database connection."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        return [row[0] for row in cursor.fetchall()]
