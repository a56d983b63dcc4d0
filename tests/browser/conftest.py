"""The browser tests' fixtures: Rapport in processes of its own (tests/support/servers.py),
Debian's headless Chromium driven by Playwright, the agent console logged in, and the queue the
console tests ring. What a test does on a page is in tests/support/browser.py.

The servers run against pytest-django's test database, so the tests that use them are
`django_db(transaction=True)`: their fixture rows are committed where the servers see them.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from routing.models import Queue
from tests.support import generic_cti
from tests.support.browser import QUEUE_NUMBER, launched_chromium
from tests.support.servers import RapportServers, served


@pytest.fixture(scope="module")
def rapport_servers(django_db_setup, django_db_blocker) -> Iterator[RapportServers]:
    """The web server and a Celery worker with beat: the whole system, as agents meet it."""
    with django_db_blocker.unblock(), served(with_worker=True) as servers:
        yield servers


@pytest.fixture(scope="module")
def web_server(django_db_setup, django_db_blocker) -> Iterator[RapportServers]:
    """The web server alone: a test that makes the changes itself, with no router acting."""
    with django_db_blocker.unblock(), served(with_worker=False) as servers:
        yield servers


@pytest.fixture(scope="module")
def cti_server(django_db_setup, django_db_blocker) -> Iterator[RapportServers]:
    """The web server with Generic CTI on, and no router worker: the PBX routes those calls."""
    extra_env = {"TELEPHONY_CTI_TOKEN": generic_cti.TOKEN}
    with django_db_blocker.unblock(), served(with_worker=False, extra_env=extra_env) as servers:
        yield servers


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    with launched_chromium() as browser:
        yield browser


@pytest.fixture
def open_console(chromium, request) -> Iterator[Callable[..., Any]]:
    """Log `username` in through the login form and return the console page: on
    `rapport_servers`, or `on` other servers (`cti_server`). Every message each page's sockets
    received is printed at teardown: pytest shows it when a test fails, which tells a lost or
    late message from a console that mishandled one."""
    contexts = []
    page_errors: list[str] = []
    received: list[tuple[str, list[str]]] = []

    def open_as(
        username: str,
        password: str | None = None,
        *,
        sockets: list | None = None,
        on: RapportServers | None = None,
    ) -> Any:
        """With `sockets`, the agent socket runs through Playwright, which appends each
        connection's route to the list so a test can drop it."""
        servers = on or request.getfixturevalue("rapport_servers")
        context = chromium.new_context(viewport={"width": 1280, "height": 860})
        context.set_default_timeout(8000)
        contexts.append(context)
        page = context.new_page()
        if sockets is not None:

            def through_playwright(route: Any) -> None:
                route.connect_to_server()
                sockets.append(route)

            page.route_web_socket("**/ws/agent/", through_playwright)
        page.on("pageerror", lambda error: page_errors.append(str(error)))
        frames: list[str] = []
        received.append((username, frames))
        page.on(
            "websocket",
            lambda socket: socket.on(
                "framereceived",
                lambda payload: frames.append(f"{time.monotonic():.3f} {str(payload)[:300]}"),
            ),
        )

        def note_api_response(response: Any) -> None:
            if "/api/" in response.url:
                request = response.request
                frames.append(
                    f"{time.monotonic():.3f} {request.method} {response.url} {response.status}"
                )

        page.on("response", note_api_response)
        page.goto(servers.base_url + "/accounts/login/")
        page.fill("input[name=username]", username)
        page.fill("input[name=password]", password or "pw-" + username)
        page.click("button[type=submit]")
        page.wait_for_url(servers.base_url + "/")
        page.wait_for_selector('[data-link-state="live"]')
        return page

    yield open_as
    for context in contexts:
        for page in context.pages:
            with contextlib.suppress(Exception):
                shown = page.eval_on_selector_all(
                    "[data-note-state], [data-notice], [data-caller-name]",
                    "nodes => nodes.map(n => n.outerHTML.slice(0, 300))",
                )
                print("on the page at the end:", *shown, sep="\n  ")
        context.close()
    for username, frames in received:
        print(f"socket messages received by {username}'s page:", *frames, sep="\n  ")
    assert page_errors == [], page_errors


@pytest.fixture
def queue(db) -> Queue:
    """The queue the console tests ring: an offer rings 20 s, a caller waits 5 s for their busy
    last agent."""
    return Queue.objects.create(
        slug="loyalty",
        name="Loyalty",
        numbers=[QUEUE_NUMBER],
        offer_timeout_seconds=20,
        last_agent_wait_seconds=5,
    )
