"""Rapport for a bench run, as production runs it: embedded PostgreSQL and Redis, the environment
its processes read, uvicorn and Celery started and stopped, and Django in the bench's own process.

Every process runs with `bench.settings` (production's, with `bench/urls.py`) from the checkout's
root, with that root on its `PYTHONPATH`, so `bench` is importable in each of them.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import django
import httpx

from development.embedded import embedded_services, free_port
from infrastructure.paths import RUNTIME_DIR

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
SETTINGS = "bench.settings"


def state_dir(name: str) -> Path:
    """Where a bench keeps its embedded PostgreSQL and Redis, logs and schedules."""
    return RUNTIME_DIR / name


@contextlib.contextmanager
def services(name: str) -> Iterator[dict[str, str]]:
    """PostgreSQL and Redis under `state_dir(name)`, unless DATABASE_URL / REDIS_URL are set;
    yields the URLs to export."""
    with embedded_services(state_dir(name)) as urls:
        yield urls


def local_port() -> tuple[int, str]:
    """A free port on the loopback, and the base URL of a server listening there."""
    port = free_port()
    return port, f"http://127.0.0.1:{port}"


def new_webhook_secret() -> str:
    """A Standard Webhooks secret for one run: the server checks it, the bench signs with it."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def environment(urls: dict[str, str], *, name: str, **more: str) -> dict[str, str]:
    """What Rapport's processes read, as production sets it, minus TLS (the load generator speaks
    plain HTTP). `name`: the Celery queue and channel-layer prefix of the run's messages.
    `more`: further settings (the webhook's secret and rate limit, the pool's size)."""
    return {
        **os.environ,
        **urls,
        "DJANGO_SETTINGS_MODULE": SETTINGS,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        "DEBUG": "0",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "INSECURE_HTTP": "1",
        "LOG_LEVEL": "WARNING",
        "TELEPHONY_CONTROL_URL": "",
        "CELERY_QUEUE": name,
        "CHANNELS_PREFIX": name,
        **more,
    }


@contextlib.contextmanager
def migrated(name: str, **more: str) -> Iterator[tuple[dict[str, str], dict[str, str]]]:
    """`services(name)`, migrated; yields their URLs and `environment(urls, name=name, **more)`."""
    with services(name) as urls:
        env = environment(urls, name=name, **more)
        subprocess.run(
            [PYTHON, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True
        )
        yield urls, env


def fill(env: dict[str, str], *arguments: str) -> dict:
    """`python -m bench.data ARGUMENTS` (the bench's people and calls, written inside Django in
    a process of its own); what it printed last, as JSON."""
    done = subprocess.run(
        [PYTHON, "-m", "bench.data", *arguments],
        cwd=ROOT,
        env=env,
        check=True,
        stdout=subprocess.PIPE,
    )
    return json.loads(done.stdout.decode().strip().splitlines()[-1])


def uvicorn(app: str, port: int, *flags: str) -> list[str]:
    return [PYTHON, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port), *flags]


def celery_worker(*, pool: str = "prefork", processes: int = 2) -> list[str]:
    return [
        *(PYTHON, "-m", "celery", "-A", "rapport", "worker", "-P", pool),
        *("-c", str(processes), "--loglevel", "WARNING"),
        *("--without-gossip", "--without-mingle", "--without-heartbeat"),
    ]


def celery_beat(state: Path) -> list[str]:
    return [
        *(PYTHON, "-m", "celery", "-A", "rapport", "beat", "--loglevel", "WARNING"),
        *("--schedule", str(state / "celerybeat-schedule")),
    ]


def start_rapport(
    env: dict[str, str], port: int, *, state: str, worker_processes: int
) -> list[subprocess.Popen]:
    """Rapport's processes as production runs them, started afresh: uvicorn on `port` (one
    process, a pool of 8 database connections, lifespan on, so it opens its connections
    before the first request), a Celery worker (prefork, `worker_processes`) and beat."""
    flags = ("--no-access-log", "--log-level", "warning", "--lifespan", "on")
    return [
        start(uvicorn("rapport.asgi:application", port, *flags), {**env, "DB_POOL_MAX_SIZE": "8"}),
        start(celery_worker(processes=worker_processes), env),
        start(celery_beat(state_dir(state)), env),
    ]


def under_py_spy(out: str | None) -> list[str]:
    """The prefix that runs a command under py-spy, its samples (collapsed stacks) to `out`;
    nothing without `out`. Only samples holding the GIL (`--gil`): Python using the CPU."""
    if not out:
        return []
    sampling = ["--subprocesses", "--gil", "-r", "100", "-f", "raw", "-o", out, "--"]
    return [str(Path(PYTHON).parent / "py-spy"), "record", *sampling]


def start(command: list[str], env: dict[str, str], **options) -> subprocess.Popen:
    return subprocess.Popen(command, cwd=ROOT, env=env, **options)


def wait_until_answering(base_url: str, process: subprocess.Popen, timeout: float = 60) -> None:
    """Until the server answers its health check; SystemExit if it exits or does not answer."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the server exited with {process.returncode}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(base_url + "/api/health/", timeout=2).status_code == 200:
                return
        time.sleep(0.2)
    raise SystemExit(f"{base_url} did not answer")


def stop(processes: list[subprocess.Popen], timeout: float = 20) -> None:
    for process in processes:
        # py-spy writes its samples on SIGINT, not on SIGTERM.
        process.send_signal(signal.SIGINT if process.args[0].endswith("py-spy") else signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()


@contextlib.contextmanager
def django_in_this_process(state: str, *, name: str, **more: str) -> Iterator[dict[str, str]]:
    """Django set up in the bench's own process, on the database under `state_dir(state)`, with
    `environment(...)`; yields the services' URLs. `name`, `more`: as for `environment`."""
    with services(state) as urls:
        os.environ.update(environment(urls, name=name, **more))
        django.setup()
        yield urls


def write_results(name: str, results: dict) -> Path:
    """`bench/results/<name>-<UTC time>.json` (git-ignored)."""
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}-{datetime.now(tz=UTC):%Y%m%dT%H%M%SZ}.json"
    path.write_text(json.dumps(results, indent=2) + "\n")
    print(f"written to {path.relative_to(ROOT)}")
    return path
