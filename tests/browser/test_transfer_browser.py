"""Transfer from the console, end to end: headless Chromium, the real ASGI app, a real Celery
worker, and a real HTTP server playing the phone system's control URL. Dana, on a call,
transfers it to Lee with a hand-off note; Lee reads the note before he accepts; the phone system
is told (a signed `call.transfer`), reports the transfer, and Dana wraps up while Lee is on the
call; the note is in the customer's history."""

from __future__ import annotations

import json
import threading
from http.server import ThreadingHTTPServer

import pytest
from standardwebhooks.webhooks import Webhook

from customers.models import CallNote, Consent
from routing.models import Agent, Call
from routing.states import AgentStatus, CallState
from tests.support.browser import accept_and_answer, card_text, go_available, ring, screenshot
from tests.support.routing import wait_until
from tests.support.servers import WEBHOOK_SECRET, served
from tests.support.telephony import TelephonyControl

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(120),
]

NOTE = "exchange for the trail shoes, size 9 too small — label already sent"


@pytest.fixture(scope="module")
def control_url():
    server = ThreadingHTTPServer(("127.0.0.1", 0), TelephonyControl)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/control"
    server.shutdown()


@pytest.fixture(scope="module")
def pushing_servers(django_db_setup, django_db_blocker, control_url):
    """The web server and a worker with beat that push instructions to the phone system."""
    extra_env = {"TELEPHONY_CONTROL_URL": control_url, "TELEPHONY_CONNECT_RETRY_SECONDS": "0.2"}
    with django_db_blocker.unblock(), served(with_worker=True, extra_env=extra_env) as servers:
        yield servers


def pushed(kind: str) -> list[tuple[dict, bytes]]:
    return [
        (headers, body)
        for headers, body in TelephonyControl.received
        if json.loads(body)["type"] == kind
    ]


def test_dana_transfers_to_lee_with_a_note_lee_reads_first(
    open_console, pushing_servers, make_agent, make_customer, queue
):
    TelephonyControl.script, TelephonyControl.received = [], []
    dana = make_agent("dana", extension="1001")
    lee = make_agent("lee", extension="1002")
    maya = make_customer("Maya Chen", consent=Consent.OPEN)
    dana_page = open_console("dana", on=pushing_servers)
    go_available(dana_page)
    ring(dana_page, pushing_servers, "CA-handoff")
    call = accept_and_answer(dana_page, pushing_servers, "CA-handoff")
    lee_page = open_console("lee", on=pushing_servers)
    go_available(lee_page)

    dana_page.wait_for_selector("[data-call-controls]:not([hidden])")
    # Opening the list reads who is free now.
    dana_page.focus("[data-transfer-to]")
    dana_page.wait_for_selector(
        f'[data-transfer-to] option[value="{lee.id}"]:not([disabled])', state="attached"
    )
    dana_page.select_option("[data-transfer-to]", str(lee.id))
    dana_page.fill("[data-transfer-note]", NOTE)
    screenshot(dana_page, "console-transfer")
    dana_page.click("[data-transfer-send]")

    lee_page.wait_for_selector('[data-card][data-mode="offer"] [data-handoff-note]')
    card = card_text(lee_page)
    assert "Hand-off from Dana" in card
    # The hand-off comes first, then the usual context.
    assert card.index(NOTE) < card.index("Maya Chen")
    screenshot(lee_page, "console-handoff-offer")
    dana_page.wait_for_selector("[data-transfer-state]:has-text('Ringing Lee')")

    lee_page.click("[data-accept]")

    headers, body = wait_until(lambda: pushed("call.transfer"), timeout=15)[0]
    Webhook(WEBHOOK_SECRET).verify(body, headers)
    assert json.loads(body)["agent"] == "1002"
    assert json.loads(body)["from_agent"] == "1001"
    dana_page.wait_for_selector("[data-transfer-state]:has-text('Lee accepted')")

    pushing_servers.post_event("call.transferred", "CA-handoff", agent="1002")

    dana_page.wait_for_selector("[data-wrapup]:not([hidden])")
    lee_page.wait_for_selector("[data-card][data-mode='call']:has-text('Transferred')")
    assert "Hand-off from Dana" in card_text(lee_page)
    call = Call.objects.get(id=call.id)
    assert (call.state, call.agent_id) == (CallState.TRANSFERRED, lee.id)
    assert Agent.objects.get(id=dana.id).status == AgentStatus.WRAP_UP
    assert Agent.objects.get(id=lee.id).status == AgentStatus.BUSY
    assert CallNote.objects.get(customer=maya, call_id=call.id).text == (
        f"Hand-off from Dana to Lee: {NOTE}"
    )
