"""Rapport as production runs it, in processes of its own: uvicorn serving rapport.asgi and a
Celery worker with beat on this test run's database (`served`), or the whole of it through
`manage.py up` (`start_up`).

`served` runs against pytest-django's test database, so tests that use it must be
`django_db(transaction=True)`: their fixture rows are committed where the servers see them.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from django.conf import settings
from standardwebhooks import Webhook

from telephony.signing import signature_headers
from tests.support.routing import database_url_for_workers

WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"rapport-browser-tests-secret-32b").decode()
REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def manage_check(**env: str) -> subprocess.CompletedProcess:
    """`manage.py check` in a process of its own, with `env` added to this one's: the system
    checks a server runs at start."""
    return subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=settings.BASE_DIR,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def stop_process(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def wait_for_http(url: str, process: subprocess.Popen, log: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}:\n{log.read_text()}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=1).status_code < 500:
                return
        time.sleep(0.1)
    raise RuntimeError(f"server did not answer at {url}:\n{log.read_text()}")


def _wait_for_worker(log: Path, process: subprocess.Popen, timeout: float = 40) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"celery exited with {process.returncode}:\n{log.read_text()}")
        if " ready." in log.read_text(errors="replace"):
            return
        time.sleep(0.2)
    raise RuntimeError(f"celery worker not ready:\n{log.read_text()}")


@dataclass
class RapportServers:
    base_url: str
    logs: dict[str, Path]

    def post_event(self, event_type: str, call_id: str, **fields: Any) -> httpx.Response:
        """A signed telephony event, as the PBX would send it."""
        body = json.dumps(
            {
                "type": event_type,
                "call_id": call_id,
                "occurred_at": datetime.now(UTC).isoformat(),
                **fields,
            }
        )
        headers = {
            "content-type": "application/json",
            **signature_headers(webhook=Webhook(WEBHOOK_SECRET), body=body),
        }
        response = httpx.post(
            self.base_url + "/api/telephony/events/", content=body, headers=headers, timeout=10
        )
        assert response.status_code == 202, response.text
        return response

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(
            f"--- {name} ---\n" + "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
            for name, path in self.logs.items()
        )


@contextlib.contextmanager
def served(
    *, with_worker: bool, extra_env: dict[str, str] | None = None
) -> Iterator[RapportServers]:
    """uvicorn serving rapport.asgi, and with `with_worker` a `celery worker -B`, on the test
    database (call with the database unblocked); `extra_env` adds to their environment."""
    workdir = Path(tempfile.mkdtemp(prefix="rapport-browser-"))
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url_for_workers(),
        "TELEPHONY_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "DJANGO_SETTINGS_MODULE": "rapport.settings",
        "PYTHONUNBUFFERED": "1",
        "LOG_LEVEL": "WARNING",
        # A queue of their own: no other test's worker takes these servers' tasks.
        "CELERY_QUEUE": f"browser-{port}",
        **(extra_env or {}),
    }
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    commands = {
        "web": [
            sys.executable,
            *("-m", "uvicorn", "rapport.asgi:application"),
            *("--host", "127.0.0.1", "--port", str(port), "--lifespan", "on"),
            "--no-access-log",
        ],
    }
    if with_worker:
        commands["worker"] = [
            sys.executable,
            *("-m", "celery", "-A", "rapport", "worker", "-B"),
            *("--pool", "threads", "--concurrency", "4", "--loglevel", "INFO"),
            *("--schedule", str(workdir / "celerybeat-schedule")),
            *("--hostname", f"browser-{port}@%h", "--without-mingle", "--without-gossip"),
        ]
    logs = {name: workdir / f"{name}.log" for name in commands}
    processes: dict[str, subprocess.Popen] = {}
    try:
        for name, command in commands.items():
            processes[name] = subprocess.Popen(
                command,
                cwd=REPO,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=logs[name].open("w"),
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        base_url = f"http://127.0.0.1:{port}"
        wait_for_http(base_url + "/accounts/login/", processes["web"], logs["web"])
        if with_worker:
            _wait_for_worker(logs["worker"], processes["worker"])
        yield RapportServers(base_url=base_url, logs=logs)
    finally:
        for process in processes.values():
            stop_process(process)


# --- the whole of it: `manage.py up` ---------------------------------------------------------


def start_up(data_dir, *extra: str) -> tuple[subprocess.Popen, int]:
    """`manage.py up` with its own embedded PostgreSQL and Redis under `data_dir`; the process
    and the port its console answers on."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env["RAPPORT_DATA_DIR"] = str(data_dir)
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "manage.py", "up", "--port", str(port), "--workers", "1", *extra],
        cwd=settings.BASE_DIR,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    return process, port


def wait_for_console(process, port, timeout=90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stdout.read()
        try:
            if httpx.get(f"http://127.0.0.1:{port}/accounts/login/", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    raise AssertionError("the console never answered")


def stop_up(process) -> str:
    """SIGTERM, as Ctrl-C in the terminal; what `up` printed."""
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=60)
    return output
