"""Generic CTI in the agent's console: headless Chromium, the real ASGI server, events posted by
the py-zammad-cti package's CTIClient. The PBX routes the call; the console shows who is calling
while the phone rings, and the caller's notes once the agent answers."""

import os

import pytest

from customers.models import CallNote, Consent
from routing.models import Call
from routing.states import AgentStatus, CallState
from tests.support.generic_cti import (
    answer,
    cti_url,
    hangup,
    new_call,
    send,
)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(120),
    pytest.mark.usefixtures("cti_client_python"),
]

MAYA = "+14155550123"


def test_the_phone_rings_with_the_callers_card_and_the_answering_agent_sees_their_notes(
    open_console, cti_server, make_agent, make_customer
):
    dana = make_agent("dana", extension="1001", status=AgentStatus.AVAILABLE)
    sam = make_agent("sam", extension="1002")
    maya = make_customer("Maya Chen", phones=(MAYA,), consent=Consent.OPEN)
    CallNote.objects.create(
        customer=maya, author=sam.user, text="Asked about trail shoes.", occasion="hiking trip"
    )
    url = cti_url(cti_server.base_url)
    page = open_console("dana", on=cti_server)

    send(url, new_call("cti-browser", caller=MAYA, user="Dana"))

    ringing = page.wait_for_selector('[data-card][data-mode="ringing"]', timeout=15000)
    assert "ringing on your phone" in ringing.inner_text().lower()
    if os.environ.get("RAPPORT_CTI_SCREENSHOT"):
        page.screenshot(path=os.environ["RAPPORT_CTI_SCREENSHOT"], full_page=True)
    assert "Maya Chen" in ringing.inner_text()
    assert page.query_selector("[data-accept]") is None

    send(url, answer("cti-browser", caller=MAYA, answering_number="1001", user="Dana"))

    page.wait_for_selector('[data-card][data-mode="call"][data-call-id="cti-browser"]')
    card = page.inner_text("[data-card]")
    assert "Maya Chen" in card
    assert "Asked about trail shoes." in card
    assert "hiking trip" in card
    page.wait_for_selector("[data-note-form]:not([hidden])")
    assert Call.objects.get(telephony_call_id="cti-browser").agent == dana

    send(url, hangup("cti-browser", caller=MAYA, cause="normalClearing", answering_number="1001"))

    page.wait_for_selector("[data-wrapup]:not([hidden])")
    assert Call.objects.get(telephony_call_id="cti-browser").state == CallState.ENDED
