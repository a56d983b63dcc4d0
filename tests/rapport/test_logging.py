"""What a person watching the terminal reads: one line per call event and per routing decision,
each naming the call; the router's sweeper silent unless it acted."""

import logging

import pytest

from routing import router
from routing.models import Call
from tests.support.telephony import event, ringing

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("webhook_secret")]


def _lines(caplog, call_id: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if call_id in r.getMessage()]


def test_each_call_event_and_routing_decision_is_one_info_line_naming_the_call(
    phone_system, caplog, make_agent
):
    make_agent("dana", status="available")
    caplog.set_level(logging.INFO)

    assert phone_system.post(ringing("CA-logged")).status_code == 202
    router.route_call(Call.objects.get(telephony_call_id="CA-logged").pk)

    lines = _lines(caplog, "CA-logged")
    assert lines == [
        "call 'CA-logged': call.ringing, now queued",
        lines[1],
    ]
    assert lines[1].startswith("call 'CA-logged': routed, ") and "offered to agent" in lines[1]


def test_a_repeated_event_is_not_logged_again_at_info(phone_system, caplog, queue):
    caplog.set_level(logging.INFO)
    body = ringing("CA-twice")

    phone_system.post(body, webhook_id="msg_same")
    once = _lines(caplog, "CA-twice")
    phone_system.post(body, webhook_id="msg_same")

    assert once == [
        "call 'CA-twice': call.ringing, now queued",
        "call 'CA-twice': routed, no_agent_waiting",
    ]
    assert _lines(caplog, "CA-twice") == once


def test_the_sweeper_says_nothing_when_it_did_nothing(caplog, queue):
    caplog.set_level(logging.INFO)

    router.sweep()

    assert [r for r in caplog.records if r.name.startswith("routing")] == []


def test_a_decision_about_an_agent_that_offered_nothing_does_not_say_offered(
    phone_system, caplog, make_agent
):
    dana = make_agent("dana", extension="dana")
    caplog.set_level(logging.INFO)
    phone_system.post(ringing("CA-answered-at-phone"))
    caplog.clear()

    phone_system.post(event("call.answered", "CA-answered-at-phone", agent="dana"))

    routed = [line for line in _lines(caplog, "CA-answered-at-phone") if "routed" in line]
    assert routed == [
        f"call 'CA-answered-at-phone': routed, telephony_answered, about agent {dana.id}"
    ]
