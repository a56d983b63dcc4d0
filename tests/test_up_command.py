"""`manage.py up`: the one command that starts all of Rapport, and stops all of it."""

import os
import signal
import subprocess
import sys
import time

import httpx
import psutil
import pytest
from django.conf import settings

from tests.browser import free_port

pytestmark = pytest.mark.slow


def _start_up(data_dir, *extra: str):
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


def _wait_for_console(process, port, timeout=90.0) -> None:
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


def _stop(process) -> str:
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=60)
    return output


def _descendants(pid: int) -> list[psutil.Process]:
    return psutil.Process(pid).children(recursive=True)


def test_it_starts_everything_with_demo_data_and_stops_every_process(tmp_path):
    process, port = _start_up(tmp_path)
    try:
        _wait_for_console(process, port)
        started = _descendants(process.pid)
        command_lines = " ".join(" ".join(p.cmdline()) for p in started if p.is_running())
        assert "uvicorn" in command_lines
        assert "worker" in command_lines
        assert "beat" in command_lines
        assert "redis-server" in command_lines
        assert "simulate" in command_lines, "the simulated phone line runs with demo data"
        assert (tmp_path / "dev" / "services.json").exists(), "commands beside it find the servers"
        postgres_pid = int(
            (tmp_path / "dev" / "postgres" / "postmaster.pid").read_text().split()[0]
        )
        health = httpx.get(f"http://127.0.0.1:{port}/api/health/", timeout=5)
        assert health.json() == {"status": "ok"}, "the web server reaches the database"
    finally:
        output = _stop(process)

    assert "Demo logins" in output and "dana" in output and "morgan" in output
    assert not (tmp_path / "dev" / "services.json").exists()
    assert process.returncode == 0, output
    time.sleep(0.5)
    survivors = [p for p in started if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert survivors == [], f"left running: {[p.cmdline() for p in survivors]}"
    assert not psutil.pid_exists(postgres_pid) or (
        psutil.Process(postgres_pid).status() == psutil.STATUS_ZOMBIE
    )

    again, port = _start_up(tmp_path)
    try:
        _wait_for_console(again, port)
    finally:
        output = _stop(again)
    assert "Demo data already loaded" in output
