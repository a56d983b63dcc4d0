"""`manage.py up`: the one command that starts all of Rapport, and stops all of it."""

import time

import httpx
import psutil
import pytest

from tests.support.servers import start_up, stop_up, wait_for_console

pytestmark = pytest.mark.slow


def _descendants(pid: int) -> list[psutil.Process]:
    return psutil.Process(pid).children(recursive=True)


def test_it_starts_everything_with_demo_data_and_stops_every_process(tmp_path):
    process, port = start_up(tmp_path)
    try:
        wait_for_console(process, port)
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
        output = stop_up(process)

    assert "Demo logins" in output and "dana" in output and "morgan" in output
    assert not (tmp_path / "dev" / "services.json").exists()
    assert process.returncode == 0, output
    time.sleep(0.5)
    survivors = [p for p in started if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert survivors == [], f"left running: {[p.cmdline() for p in survivors]}"
    assert not psutil.pid_exists(postgres_pid) or (
        psutil.Process(postgres_pid).status() == psutil.STATUS_ZOMBIE
    )

    again, port = start_up(tmp_path)
    try:
        wait_for_console(again, port)
    finally:
        output = stop_up(again)
    assert "Demo data already loaded" in output
