"""What the browser tests do on a page: log a supervisor in to the wall, take a call on the agent
console, draw the docs' screenshots, and run ORM work away from Playwright's event loop. The
fixtures (servers, Chromium, `open_console`) are in tests/browser/conftest.py."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from django.db import connection

from routing.models import Call
from tests.support.servers import REPO, RapportServers

SCREENSHOTS = REPO / "docs" / "screenshots"

# The number the console tests' queue answers (tests/browser/conftest.py: `queue`).
QUEUE_NUMBER = "+18005550100"

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


@contextlib.contextmanager
def launched_chromium(extra_args: Sequence[str] = ()) -> Iterator[Any]:
    """Debian's headless Chromium under Playwright (the test skips where it is not installed)."""
    if not CHROMIUM.exists():
        pytest.skip("headless Chromium (/usr/bin/chromium) is not installed")
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop in this thread; the ORM calls the tests make
    # around it are still plain synchronous calls.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=str(CHROMIUM), args=[*CHROMIUM_ARGS, *extra_args], headless=True
            )
            try:
                yield browser
            finally:
                browser.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


def screenshot(page, name: str) -> None:
    """Redraw docs/screenshots/<name>.png, only when RAPPORT_SCREENSHOTS is set."""
    if os.environ.get("RAPPORT_SCREENSHOTS"):
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def in_a_thread(work: Callable[[], Any]) -> Any:
    """Run ORM work (and its on-commit socket messages) away from Playwright's event loop."""
    result: dict[str, Any] = {}

    def run() -> None:
        try:
            result["value"] = work()
        except BaseException as error:  # re-raised in the test's thread
            result["error"] = error
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(timeout=30)
    if "error" in result:
        raise result["error"]
    return result.get("value")


# --- the supervisor's wall -------------------------------------------------------------------


def open_dashboard(
    browser: Any, base_url: str, username: str, password: str, *, width: int = 1440
) -> tuple[Any, Any, list[str]]:
    """Log in through the form and open /supervisor/. Returns (context, page, page errors)."""
    context = browser.new_context(viewport={"width": width, "height": 1000})
    context.set_default_timeout(8000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on(
        "console",
        lambda message: (
            errors.append(message.text)
            if message.type == "error" and not message.text.startswith("Failed to load resource")
            else None
        ),
    )
    page.on(
        "response",
        lambda response: (
            errors.append(f"{response.status} {response.url}")
            if response.status >= 400 and not response.url.endswith("/favicon.ico")
            else None
        ),
    )
    page.goto(base_url + "/accounts/login/?next=/supervisor/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url(base_url + "/supervisor/")
    page.wait_for_selector('[data-link-state="live"]')
    return context, page, errors


# --- the agent console -----------------------------------------------------------------------


def go_available(page) -> None:
    page.click('[data-set-status="available"]')
    page.wait_for_selector('[data-set-status="available"][aria-checked="true"]')


def call_rings(servers: RapportServers, call_id: str, number: str = "+14155550123") -> None:
    """A call from `number` rings on the queue."""
    servers.post_event("call.ringing", call_id, **{"from": number}, to=QUEUE_NUMBER)


def wait_for_offer(page):
    return page.wait_for_selector('[data-card][data-mode="offer"]', timeout=15000)


def ring(page, servers: RapportServers, call_id: str, number: str = "+14155550123") -> None:
    """A call from `number` rings on the queue, and its offer is on the agent's screen."""
    call_rings(servers, call_id, number)
    wait_for_offer(page)


def accept_and_answer(page, servers: RapportServers, call_id: str) -> Call:
    """The agent (extension 1001) accepts the offer on screen and picks up: the call is
    connected, and the screen has been told."""
    page.click("[data-accept]")
    page.wait_for_selector('[data-card][data-mode="call"]')
    servers.post_event("call.answered", call_id, agent="1001")
    page.wait_for_selector("[data-card]:has-text('On call')")
    return Call.objects.get(telephony_call_id=call_id)


def card_text(page) -> str:
    return page.inner_text("[data-card]")
