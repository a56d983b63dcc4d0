"""Django's PostgreSQL backend, checking a connection only when it has sat idle: one pooled (the
web server's) when the pool hands it out, one kept (CONN_MAX_AGE: the Celery worker's) before a
task or request uses it.

With CONN_HEALTH_CHECKS, Django has psycopg's pool check every connection it hands out: one
round trip before every request's first query, and under uvicorn a wait for the GIL after it,
which the telephony webhook paid on every event (8% of its time at 50 events/s). A
connection given back a moment ago was working then; one that sat idle longer than
`CHECK_AFTER_IDLE_SECONDS` is checked as before, and replaced when the server dropped it.

A kept connection is checked the same way. Django's CONN_HEALTH_CHECKS runs its check (a round
trip) before the first statement of every request or task: on the router's path, every routing.
A connection that ran a statement less than `CHECK_AFTER_IDLE_SECONDS` ago is taken as working;
if the server dropped it within that window, the statement fails and the router's task is run
again on a new connection (routing.tasks).
"""

from __future__ import annotations

import time
import weakref

import psycopg
from django.db.backends.postgresql import base
from psycopg_pool import ConnectionPool

CHECK_AFTER_IDLE_SECONDS = 2.0
# A pool whose connections all fail their check (the server restarted) hands out new ones.
CHECK_ATTEMPTS = 3

check_connection = ConnectionPool.check_connection
_given_back_at: weakref.WeakKeyDictionary[psycopg.Connection, float] = weakref.WeakKeyDictionary()


class DatabaseWrapper(base.DatabaseWrapper):
    def get_new_connection(self, conn_params):
        connection = super().get_new_connection(conn_params)
        if not self.pool:
            return connection
        for _attempt in range(CHECK_ATTEMPTS):
            idle = time.monotonic() - _given_back_at.get(connection, float("-inf"))
            if idle < CHECK_AFTER_IDLE_SECONDS:
                return connection
            try:
                check_connection(connection)
            except psycopg.Error:
                # Closed, the pool discards it when it comes back.
                connection.close()
                self.pool.putconn(connection)
                connection = super().get_new_connection(conn_params)
            else:
                return connection
        return connection

    _used_at = float("-inf")

    def close_if_health_check_failed(self):
        now = time.monotonic()
        used_a_moment_ago = now - self._used_at < CHECK_AFTER_IDLE_SECONDS
        self._used_at = now
        if self.pool is None and self.connection is not None and used_a_moment_ago:
            self.health_check_done = True
            return
        super().close_if_health_check_failed()

    def _close(self):
        if self.pool and self.connection is not None:
            _given_back_at[self.connection] = time.monotonic()
        super()._close()
