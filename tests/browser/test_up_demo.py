"""The first five minutes: `manage.py up` in demo mode, a simulated phone line ringing by itself,
Dana in headless Chromium taking a caller, a command run beside it, the supervisor's wall alive.

Runs the real `up` (embedded PostgreSQL and Redis of its own under a temporary folder), so it is
slow; the simulator is sped up through `up`'s own options.
"""

import os
import subprocess
import sys
import time

import pytest
from django.conf import settings

from tests.support.servers import start_up, stop_up, wait_for_console

pytestmark = [pytest.mark.slow, pytest.mark.browser, pytest.mark.timeout(300)]

DEMO_PASSWORD = "rapport-demo"


def _log_in(browser, base_url: str, username: str):
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    context.set_default_timeout(15000)
    page = context.new_page()
    page.goto(base_url + "/accounts/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", DEMO_PASSWORD)
    page.click("button[type=submit]")
    return context, page


def _beside_up(data_dir, code: str) -> subprocess.CompletedProcess:
    """A second terminal: no DATABASE_URL / REDIS_URL, the same checkout and data folder."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env["RAPPORT_DATA_DIR"] = str(data_dir)
    return subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _take_a_caller_with_notes(page, deadline: float) -> str:
    """Wait for offers; accept the first whose card carries earlier notes (decline the others:
    a new number or the household line has none to show)."""
    while time.monotonic() < deadline:
        remaining_ms = max(1000, int((deadline - time.monotonic()) * 1000))
        page.wait_for_selector('[data-card][data-mode="offer"]', timeout=remaining_ms)
        if page.locator("[data-card] [data-notes] .note-item").count() > 0:
            card = page.inner_text("[data-card]")
            page.click("[data-accept]")
            return card
        declined = page.get_attribute("[data-card]", "data-call-id")
        page.click("[data-decline]")
        # The card is reused: gone, or showing the next caller.
        page.wait_for_function(
            """(declined) => {
                const card = document.querySelector('[data-card]');
                return card.hidden || card.dataset.callId !== declined;
            }""",
            arg=declined,
            timeout=10000,
        )
    raise AssertionError("no simulated caller with notes was offered in time")


def test_a_new_user_sees_a_simulated_caller_reach_dana(tmp_path, chromium):
    started = time.monotonic()
    process, port = start_up(
        tmp_path,
        "--simulate-calls-per-minute",
        "15",
        "--simulate-args",
        "--talk-seconds 4 8 --patience-seconds 45 60 --bot-pause-seconds 1 2 --seed 11",
    )
    base_url = f"http://127.0.0.1:{port}"
    output = ""
    try:
        wait_for_console(process, port, timeout=180)
        console_up = time.monotonic()

        beside = _beside_up(
            tmp_path,
            "from customers.models import Customer; print('customers', Customer.objects.count())",
        )
        assert beside.returncode == 0, beside.stderr
        assert "customers 400" in beside.stdout

        context, page = _log_in(chromium, base_url, "dana")
        page.wait_for_url(base_url + "/")
        page.wait_for_selector('[data-link-state="live"]')
        page.click('[data-set-status="available"]')
        page.wait_for_selector('[data-set-status="available"][aria-checked="true"]')

        card = _take_a_caller_with_notes(page, deadline=time.monotonic() + 60)
        first_offer = time.monotonic()
        assert card.strip()

        # The simulator gets call.connect, answers, talks a few seconds and hangs up.
        page.wait_for_selector('[data-card][data-mode="call"]', timeout=15000)
        page.wait_for_selector("[data-wrapup]:not([hidden])", timeout=30000)
        page.fill("[data-note-text]", "Simulated caller: wants the spring catalogue.")
        page.click("[data-note-form] button[type=submit]")
        page.wait_for_selector("[data-note-state]:has-text('Saved')")
        page.click("[data-ready]")
        context.close()

        context, page = _log_in(chromium, base_url, "morgan")
        page.wait_for_url(base_url + "/supervisor/")

        def bots_calls_today() -> int:
            total = 0
            for row in page.locator("tr[data-agent]").all():
                name = row.locator("th").inner_text()
                if name.startswith(("Sam", "Alex")):
                    total += int(row.locator(".sv-calls-today").inner_text() or 0)
            return total

        page.wait_for_function(
            "() => Number(document.querySelector('[data-total=answered]').textContent) >= 1"
        )
        deadline = time.monotonic() + 60
        while bots_calls_today() == 0 and time.monotonic() < deadline:
            time.sleep(1)
        assert bots_calls_today() >= 1, "the bot agents answered no simulated call"
        context.close()
        print(
            f"\nup → console {console_up - started:.1f} s; "
            f"→ first simulated offer with notes {first_offer - started:.1f} s"
        )
    finally:
        output = stop_up(process)

    assert "Simulated phone line" in output
    assert "superuser privileges" not in output
    assert "[queues]" not in output and "[config]" not in output, "no Celery banner"
    assert "Sending due task" not in output, "beat does not log every sweep"
    assert "call 'SIM-" in output, "one line per call event, naming the call"
    assert "routed, " in output, "one line per routing decision"
