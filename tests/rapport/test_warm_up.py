"""The first call after a start pops as fast as the hundredth: the web server and each worker
process open their connections before the first call, and keep them across quiet hours
(rapport.warm_up; the figures are bench/first_calls.py's)."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
import redis
from django.conf import settings
from django.db import connection

from rapport import celery as rapport_celery
from tests.support.routing import database_url_for_workers, running_workers, wait_until
from tests.support.servers import free_port, stop_process

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def _database_sessions() -> int:
    """Sessions on the test database besides this test's own."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            " AND backend_type = 'client backend'"
        )
        return cursor.fetchone()[0]


def _redis_clients() -> int:
    return redis.Redis.from_url(settings.REDIS_URL).info("clients")["connected_clients"]


def test_the_web_server_opens_its_connections_before_the_first_request(tmp_path):
    sessions, clients = _database_sessions(), _redis_clients()
    log = tmp_path / "uvicorn.log"
    env = {
        **os.environ,
        "DATABASE_URL": database_url_for_workers(),
        "DB_POOL_MAX_SIZE": "4",
        "LOG_LEVEL": "INFO",
    }
    command = [
        *(sys.executable, "-m", "uvicorn", "rapport.asgi:application"),
        *("--host", "127.0.0.1", "--port", str(free_port()), "--lifespan", "on"),
    ]
    with log.open("w") as out:
        server = subprocess.Popen(
            command,
            env=env,
            cwd=settings.BASE_DIR,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_until(lambda: "Application startup complete" in log.read_text(), timeout=30)

        # No request has been made: the event loop's connection (the webhook's record, the
        # sockets' checks) and Django's pool; the broker, and the channel layer.
        wait_until(lambda: _database_sessions() >= sessions + 2, timeout=10)
        wait_until(lambda: _redis_clients() >= clients + 2, timeout=10)
    finally:
        stop_process(server)


def test_a_worker_process_opens_its_connections_before_its_first_task(tmp_path):
    sessions, clients = _database_sessions(), _redis_clients()

    with running_workers(tmp_path, concurrency=1, beat=False):
        # The pool process's database connection, its broker pool and channel layer, beside
        # the worker's own consumer: before any task ran.
        wait_until(lambda: _database_sessions() >= sessions + 1, timeout=30)
        wait_until(lambda: _redis_clients() >= clients + 3, timeout=30)


def test_a_connection_past_its_age_is_renewed_after_a_task_not_before_the_next():
    connection.ensure_connection()
    old = connection.connection
    # Django's own rule after a request: a connection past CONN_MAX_AGE is closed.
    connection.close_at = time.monotonic() - 1
    kept_for = connection.settings_dict["CONN_MAX_AGE"]
    connection.settings_dict["CONN_MAX_AGE"] = 60
    try:
        rapport_celery.renew_database_connection_after_task()
        renewed = connection.connection
        assert renewed is not None and renewed is not old

        rapport_celery.check_database_connection_before_task()
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")

        assert connection.connection is renewed
    finally:
        connection.settings_dict["CONN_MAX_AGE"] = kept_for
