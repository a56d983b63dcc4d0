"""The real ASGI app under uvicorn and Debian's headless Chromium, for the supervisor's test.

The server is a subprocess on pytest-django's test database, so a test using it must be
`django_db(transaction=True)`. Only the web server runs: the test makes the changes itself, through
the ORM and `notify_supervisors`, and watches them arrive over the socket.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db import connection

from tests.browser import CHROMIUM, REPO, free_port, stop_process, wait_for_http
from tests.routing_helpers import database_url_for_workers


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


@pytest.fixture(scope="module")
def served_app(django_db_setup, django_db_blocker) -> Iterator[str]:
    if not CHROMIUM.exists():
        pytest.skip("headless Chromium (/usr/bin/chromium) is not installed")
    port = free_port()
    log = Path(tempfile.mkdtemp(prefix="rapport-supervisor-")) / "web.log"
    env = {
        **os.environ,
        "DATABASE_URL": database_url_for_workers(),
        "DJANGO_SETTINGS_MODULE": "rapport.settings",
        "PYTHONUNBUFFERED": "1",
        "LOG_LEVEL": "WARNING",
    }
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    command = [
        sys.executable,
        *("-m", "uvicorn", "rapport.asgi:application"),
        *("--host", "127.0.0.1", "--port", str(port), "--lifespan", "off", "--no-access-log"),
    ]
    process = subprocess.Popen(
        command,
        cwd=REPO,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(base_url + "/accounts/login/", process, log)
        yield base_url
    finally:
        stop_process(process)


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
