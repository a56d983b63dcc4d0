"""Fixtures for the browser tests: the real ASGI app, a real Celery worker + beat, and Debian's
headless Chromium driven by Playwright. Import the fixtures into a test module to use them.

The servers run as subprocesses against pytest-django's test database, so tests that use them
must be `django_db(transaction=True)`: their fixture rows are committed where the servers see them.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.db import connection
from standardwebhooks import Webhook

from telephony.signing import signature_headers
from tests.support.routing import database_url_for_workers

SCREENSHOTS = Path(__file__).resolve().parent.parent / "docs" / "screenshots"


def screenshot(page, name: str) -> None:
    """Redraw docs/screenshots/<name>.png, only when RAPPORT_SCREENSHOTS is set."""
    if os.environ.get("RAPPORT_SCREENSHOTS"):
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


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
WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"rapport-browser-tests-secret-32b").decode()
REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def stop_process(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def wait_for_http(url: str, process: subprocess.Popen, log: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}:\n{log.read_text()}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=1).status_code < 500:
                return
        time.sleep(0.1)
    raise RuntimeError(f"server did not answer at {url}:\n{log.read_text()}")


def _wait_for_worker(log: Path, process: subprocess.Popen, timeout: float = 40) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"celery exited with {process.returncode}:\n{log.read_text()}")
        if " ready." in log.read_text(errors="replace"):
            return
        time.sleep(0.2)
    raise RuntimeError(f"celery worker not ready:\n{log.read_text()}")


@dataclass
class RapportServers:
    base_url: str
    logs: dict[str, Path]

    def post_event(self, event_type: str, call_id: str, **fields: Any) -> httpx.Response:
        """A signed telephony event, as the PBX would send it."""
        body = json.dumps(
            {
                "type": event_type,
                "call_id": call_id,
                "occurred_at": datetime.now(UTC).isoformat(),
                **fields,
            }
        )
        headers = {
            "content-type": "application/json",
            **signature_headers(webhook=Webhook(WEBHOOK_SECRET), body=body),
        }
        response = httpx.post(
            self.base_url + "/api/telephony/events/", content=body, headers=headers, timeout=10
        )
        assert response.status_code == 202, response.text
        return response

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(
            f"--- {name} ---\n" + "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
            for name, path in self.logs.items()
        )


@contextlib.contextmanager
def served(
    *, with_worker: bool, extra_env: dict[str, str] | None = None
) -> Iterator[RapportServers]:
    """uvicorn serving rapport.asgi, and with `with_worker` a `celery worker -B`, on the test
    database (call with the database unblocked); `extra_env` adds to their environment."""
    workdir = Path(tempfile.mkdtemp(prefix="rapport-browser-"))
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url_for_workers(),
        "TELEPHONY_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "DJANGO_SETTINGS_MODULE": "rapport.settings",
        "PYTHONUNBUFFERED": "1",
        "LOG_LEVEL": "WARNING",
        # A queue of their own: no other test's worker takes these servers' tasks.
        "CELERY_QUEUE": f"browser-{port}",
        **(extra_env or {}),
    }
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    commands = {
        "web": [
            sys.executable,
            *("-m", "uvicorn", "rapport.asgi:application"),
            *("--host", "127.0.0.1", "--port", str(port), "--lifespan", "off"),
            "--no-access-log",
        ],
    }
    if with_worker:
        commands["worker"] = [
            sys.executable,
            *("-m", "celery", "-A", "rapport", "worker", "-B"),
            *("--pool", "threads", "--concurrency", "4", "--loglevel", "INFO"),
            *("--schedule", str(workdir / "celerybeat-schedule")),
            *("--hostname", f"browser-{port}@%h", "--without-mingle", "--without-gossip"),
        ]
    logs = {name: workdir / f"{name}.log" for name in commands}
    processes: dict[str, subprocess.Popen] = {}
    try:
        for name, command in commands.items():
            processes[name] = subprocess.Popen(
                command,
                cwd=REPO,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=logs[name].open("w"),
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        base_url = f"http://127.0.0.1:{port}"
        wait_for_http(base_url + "/accounts/login/", processes["web"], logs["web"])
        if with_worker:
            _wait_for_worker(logs["worker"], processes["worker"])
        yield RapportServers(base_url=base_url, logs=logs)
    finally:
        for process in processes.values():
            stop_process(process)


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
def chromium() -> Iterator[Any]:
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
                executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
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


@pytest.fixture
def open_console(chromium, rapport_servers) -> Iterator[Callable[..., Any]]:
    """Log `username` in through the login form and return the console page. Every message
    each page's sockets received is printed at teardown: pytest shows it when a test fails,
    which tells a lost or late message from a console that mishandled one."""
    contexts = []
    page_errors: list[str] = []
    received: list[tuple[str, list[str]]] = []

    def open_as(username: str, password: str | None = None, *, sockets: list | None = None) -> Any:
        """With `sockets`, the agent socket runs through Playwright, which appends each
        connection's route to the list so a test can drop it."""
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
        page.goto(rapport_servers.base_url + "/accounts/login/")
        page.fill("input[name=username]", username)
        page.fill("input[name=password]", password or "pw-" + username)
        page.click("button[type=submit]")
        page.wait_for_url(rapport_servers.base_url + "/")
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
