"""The web server's connection pool checks a connection before handing it out only when it sat
idle: one given back a moment ago goes straight to the next request (no round trip), one idle
longer is checked, and one the server dropped is replaced, not handed out."""

import psycopg
import pytest
from django.db import connection, connections

from infrastructure.database.postgresql import base as pooled

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def checks(monkeypatch) -> list[int]:
    """The backend pid of every connection the pool checked."""
    checked: list[int] = []

    def check(conn):
        checked.append(conn.info.backend_pid)
        pooled.ConnectionPool.check_connection(conn)

    monkeypatch.setattr(pooled, "check_connection", check)
    return checked


@pytest.fixture
def pooled_database():
    settings = {
        **connection.settings_dict,
        "ENGINE": "infrastructure.database.postgresql",
        "CONN_MAX_AGE": 0,
        "CONN_HEALTH_CHECKS": False,
        "OPTIONS": {
            **connection.settings_dict["OPTIONS"],
            "pool": {"min_size": 1, "max_size": 1, "timeout": 5},
        },
    }
    database = pooled.DatabaseWrapper(settings, alias="pooled_test")
    # Django's connection machinery looks connections up by alias.
    connections["pooled_test"] = database
    try:
        yield database
    finally:
        database.close()
        database.close_pool()
        del connections["pooled_test"]


def backend_pid(database) -> int:
    with database.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (pid,) = cursor.fetchone()
    database.close()
    return pid


def test_a_connection_given_back_a_moment_ago_is_not_checked_again(pooled_database, checks):
    first = backend_pid(pooled_database)
    again = [backend_pid(pooled_database) for _ in range(5)]

    assert again == [first] * 5
    # Only the pool's first connection, never given back before, was checked.
    assert checks == [first]


def test_a_connection_that_sat_idle_is_checked(pooled_database, checks, monkeypatch):
    monkeypatch.setattr(pooled, "CHECK_AFTER_IDLE_SECONDS", 0)
    pid = backend_pid(pooled_database)
    backend_pid(pooled_database)

    assert checks == [pid, pid]


def test_a_connection_the_server_dropped_while_idle_is_replaced(pooled_database, monkeypatch):
    monkeypatch.setattr(pooled, "CHECK_AFTER_IDLE_SECONDS", 0)
    dropped = backend_pid(pooled_database)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", [dropped])

    assert backend_pid(pooled_database) != dropped


# A kept connection (CONN_MAX_AGE, as the Celery worker's): Django's CONN_HEALTH_CHECKS would
# check it before every request's or task's first statement.


@pytest.fixture
def kept_connection_checks(monkeypatch) -> list[bool]:
    answers: list[bool] = []
    is_usable = pooled.DatabaseWrapper.is_usable

    def counted(self):
        answers.append(is_usable(self))
        return answers[-1]

    monkeypatch.setattr(pooled.DatabaseWrapper, "is_usable", counted)
    return answers


def _next_task_reads(database) -> int:
    """What Django does between two tasks or requests, then the next one's first statement."""
    database.close_if_unusable_or_obsolete()
    with database.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def test_a_kept_connection_used_a_moment_ago_is_not_checked_again(kept_connection_checks):
    database = connections["default"]
    assert isinstance(database, pooled.DatabaseWrapper)
    assert database.settings_dict["CONN_HEALTH_CHECKS"]
    first = _next_task_reads(database)
    again = [_next_task_reads(database) for _ in range(5)]

    assert again == [first] * 5
    assert kept_connection_checks == []


def test_a_kept_connection_idle_for_a_while_is_checked_and_replaced_if_dropped(
    kept_connection_checks, monkeypatch
):
    database = connections["default"]
    first = _next_task_reads(database)
    monkeypatch.setattr(pooled, "CHECK_AFTER_IDLE_SECONDS", 0)
    assert _next_task_reads(database) == first
    # Dropped by the server, as a restart or an idle timeout would.
    params = database.get_connection_params()
    params.pop("cursor_factory")
    with psycopg.connect(**params, autocommit=True) as other:
        other.execute("SELECT pg_terminate_backend(%s)", [first])
    replaced = _next_task_reads(database)

    assert kept_connection_checks == [True, False]
    assert replaced != first
