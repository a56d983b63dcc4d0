"""A person at their browser, signed in: their requests go through the ASGI application as the
server runs it (`rapport.asgi.http_application`, on the server's event loop), with their
session cookie and a CSRF token as the console's script sends them, and their sockets open
with the same session. The views run on their own database connections, so tests using it
commit (`transactional_db`); the `request_connections_closed` fixture closes those connections
after the test."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from django.contrib.auth.models import User
from django.db import connections
from django.test import Client
from django.utils.crypto import get_random_string

from tests.support.telephony import server_loop


class Person:
    """`user`, signed in once: every request and socket of theirs carries that one session."""

    def __init__(self, user: User) -> None:
        from rapport.asgi import http_application

        client = Client()
        client.force_login(user)
        self.user = user
        self.session_key = client.cookies["sessionid"].value
        self._csrf_token = get_random_string(32)
        self._app = http_application()

    @property
    def socket_headers(self) -> list[tuple[bytes, bytes]]:
        """What their browser on localhost sends when it opens a socket."""
        return [
            (b"origin", b"http://localhost"),
            (b"host", b"localhost"),
            (b"cookie", f"sessionid={self.session_key}".encode()),
        ]

    def get(self, path: str, params: dict[str, str] | None = None) -> httpx.Response:
        return self.request("GET", path, params=params)

    def post(self, path: str, body: Any = None) -> httpx.Response:
        return self.request("POST", path, json=body)

    def patch(self, path: str, body: Any, params: dict[str, str] | None = None) -> httpx.Response:
        return self.request("PATCH", path, json=body, params=params)

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return server_loop().run(self._request(method, path, **kwargs))

    async def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        transport = httpx.ASGITransport(app=self._app, client=("127.0.0.1", 40001))
        cookies = {"sessionid": self.session_key, "csrftoken": self._csrf_token}
        async with httpx.AsyncClient(
            transport=transport, base_url="http://testserver", cookies=cookies
        ) as client:
            return await client.request(
                method, path, headers={"x-csrftoken": self._csrf_token}, **kwargs
            )


@pytest.fixture
def request_connections_closed() -> Iterator[None]:
    """After the test, the database connections the server's request threads opened for a
    `Person`'s requests are closed: they would keep the test database from being dropped."""
    yield
    from rapport.asgi import django_asgi_app

    for executor in list(django_asgi_app.request_threads.idle):
        executor.submit(connections.close_all).result()
