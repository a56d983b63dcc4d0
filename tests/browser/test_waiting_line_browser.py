"""The waiting line and the card's explanation, end to end: headless Chromium, the real ASGI app,
a real Celery worker with beat, the telephony side as signed webhooks.

Set RAPPORT_SCREENSHOTS=1 to refresh docs/screenshots/console-waiting-line.png and
console-hold-why.png while this runs.
"""

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from customers.models import Consent, HoldTolerance, Provenance
from routing.models import Queue
from tests.support.browser import call_rings, go_available, screenshot
from tests.support.routing import past_call

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(120),
]


@pytest.fixture
def queue(queue: Queue) -> Queue:
    """The console tests' queue, holding a caller a minute for their busy last agent; a caller
    who avoids holding is not held."""
    queue.offer_timeout_seconds = 30
    queue.last_agent_wait_seconds = 60
    queue.hold_averse_wait_seconds = 0
    queue.save()
    return queue


def test_the_last_agent_sees_their_caller_waiting_and_then_why_on_the_card(
    open_console, rapport_servers, make_agent, make_customer, queue
):
    dana = make_agent("dana", extension="1001")
    make_agent("sam", extension="1002")
    now = timezone.now()
    ruth = make_customer(
        "Ruth Fischer",
        phones=["+14155550123"],
        consent=Consent.OPEN,
        hold_tolerance=HoldTolerance.FINE,
        hold_tolerance_source=Provenance.SAID_BY_CALLER,
        hold_tolerance_set_at=now - timedelta(days=20),
    )
    ada = make_customer(
        "Ada Brandt",
        phones=["+14155550124"],
        consent=Consent.OPEN,
        hold_tolerance=HoldTolerance.AVOID,
        hold_tolerance_source=Provenance.SAID_BY_CALLER,
        hold_tolerance_set_at=now - timedelta(days=20),
    )
    for customer in (ruth, ada):
        past_call(customer=customer, agent=dana, queue=queue, days_ago=5)

    page = open_console("dana")
    go_available(page)
    # Dana takes a stranger's call: she is busy when Ruth rings.
    call_rings(rapport_servers, "CA-stranger", "+14155550999")
    page.wait_for_selector('[data-card][data-mode="offer"]', timeout=15000)
    page.keyboard.press("a")
    page.wait_for_selector('[data-card][data-mode="call"]')
    rapport_servers.post_event("call.answered", "CA-stranger", agent="1001")
    page.wait_for_selector('[data-status-label][data-status="busy"]')

    call_rings(rapport_servers, "CA-ruth", "+14155550123")
    line = page.wait_for_selector('[data-waiting-call="CA-ruth"]', timeout=15000)
    assert re.fullmatch(r"Ruth Fischer is waiting for you \(\d+ s\)", line.inner_text())
    page.wait_for_function(
        """() => {
          const secs = document.querySelector('[data-waiting-call="CA-ruth"] .waiting-secs');
          return secs && parseInt(secs.textContent.slice(1), 10) >= 2;
        }""",
        timeout=10000,
    )
    assert page.locator('[data-card][data-mode="offer"]').count() == 0, "a line, not an offer"
    assert page.locator('[data-card][data-call-id="CA-stranger"]').count() == 1
    screenshot(page, "console-waiting-line")

    rapport_servers.post_event("call.ended", "CA-stranger", reason="completed")
    page.wait_for_selector("[data-wrapup]:not([hidden])")
    page.click("[data-ready]")
    page.wait_for_selector('[data-card][data-mode="offer"][data-call-id="CA-ruth"]', timeout=15000)
    why = page.inner_text("[data-card] [data-hold-rule]")
    assert re.fullmatch(r"Waited \d+ s for you — fine on hold", why), why
    assert page.locator("[data-waiting-lines] li").count() == 0
    assert page.is_hidden("[data-waiting-lines]")
    screenshot(page, "console-hold-why")

    page.keyboard.press("a")
    page.wait_for_selector('[data-card][data-mode="call"][data-call-id="CA-ruth"]')
    rapport_servers.post_event("call.answered", "CA-ruth", agent="1001")
    assert "fine on hold" in page.inner_text("[data-card] [data-hold-rule]")

    # Dana is on Ruth's call; Ada, who avoids holding, is not held for her.
    sams_page = open_console("sam")
    go_available(sams_page)
    call_rings(rapport_servers, "CA-ada", "+14155550124")
    sams_page.wait_for_selector(
        '[data-card][data-mode="offer"][data-call-id="CA-ada"]', timeout=15000
    )
    why = sams_page.inner_text("[data-card] [data-hold-rule]")
    assert why == "Sent straight to the queue — avoids holding"
    assert page.locator('[data-waiting-call="CA-ada"]').count() == 0
