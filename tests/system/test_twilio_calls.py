"""Whole Twilio calls with a real Celery worker: the router offers, the agent accepts, Rapport's
REST update reaches a local server standing in for api.twilio.com, and Twilio's side (signed
with the `twilio` package) follows the TwiML it is given: wait loop, enqueue action, dial
action, status callbacks."""

from __future__ import annotations

import base64
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from console import services as console_services
from routing.models import Agent, Call, DecisionReason, Offer
from routing.states import AgentStatus, CallState, OfferState
from telephony.models import ConnectAttempt, TwilioCall, TwilioDialPath
from tests.support.routing import database_url_for_workers, wait_until
from tests.support.twilio import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    PUBLIC_BASE_URL,
    new_call_sid,
    twilio_worker,
)

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.slow,
    pytest.mark.timeout(240),
    pytest.mark.usefixtures("worker", "twilio_settings"),
]


@pytest.fixture(scope="module")
def worker(django_db_setup, django_db_blocker, twilio_api, tmp_path_factory):
    with django_db_blocker.unblock():
        database_url = database_url_for_workers()
    with twilio_worker(twilio_api, tmp_path_factory.mktemp("worker"), database_url) as queue:
        yield queue


def idle_since(agent: Agent, seconds_ago: int) -> None:
    Agent.objects.filter(id=agent.id).update(
        status_changed_at=timezone.now() - timedelta(seconds=seconds_ago)
    )


def offered(call_sid: str, agent: Agent) -> Offer:
    def ringing_for_agent():
        return Offer.objects.filter(
            call__telephony_call_id=call_sid, agent=agent, state=OfferState.OFFERED
        ).first()

    return wait_until(ringing_for_agent, timeout=60, every=0.1)


def rest_updates(twilio_api, call_sid: str, count: int = 1):
    """Wait for the `count`-th REST update of the live call; the updates of that call."""

    def received():
        updates = [update for update in twilio_api.received if call_sid in update.path]
        return updates if len(updates) >= count else None

    return wait_until(received, timeout=60, every=0.1)


def the_call(call_sid: str) -> Call:
    return Call.objects.select_related("agent").get(telephony_call_id=call_sid)


def status_of(agent: Agent) -> str:
    return Agent.objects.get(pk=agent.pk).status


def test_a_call_from_arrival_to_wrap_up(twilio, twilio_api, queue, make_agent):
    dana = make_agent("dana", extension="client:dana", status=AgentStatus.AVAILABLE)
    call_sid = new_call_sid()

    # Arrive: held in the queue, the wait loop asked again and again.
    enqueue = twilio.incoming_call(call_sid).only("Enqueue")
    waiting = twilio.wait_round(enqueue, call_sid)
    assert waiting.verbs() == ["Pause", "Redirect"]
    assert waiting.root[1].text == enqueue.get("waitUrl")
    assert waiting.root[1].get("method") == "POST"

    # Offer, accept: Rapport bridges the caller with a REST update of the live call.
    offer = offered(call_sid, dana)
    console_services.accept_offer(offer_id=offer.id, agent_id=dana.id)
    (update,) = rest_updates(twilio_api, call_sid)
    assert update.path == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Calls/{call_sid}.json"
    credentials = base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()
    assert update.authorization == f"Basic {credentials}"
    (dial,) = update.twiml
    assert dial.tag == "Dial"
    assert dial.get("action").startswith(PUBLIC_BASE_URL)
    (client,) = dial
    assert (client.tag, client.text) == ("Client", "dana")

    # Twilio takes the caller out of the queue for the dial: not the end of the call.
    assert twilio.left_queue(enqueue, call_sid, "redirected").verbs() == []
    assert the_call(call_sid).state == CallState.OFFERED

    # Bridged: the agent's leg answered.
    leg_sid = new_call_sid()
    assert twilio.agent_leg(client, call_sid, leg_sid, "in-progress", at=timezone.now()) == 204
    call = the_call(call_sid)
    assert (call.state, call.agent) == (CallState.CONNECTED, dana)
    assert status_of(dana) == AgentStatus.BUSY

    # The agent hangs up: the dial ends, the caller's call is hung up and ends.
    assert twilio.agent_leg(client, call_sid, leg_sid, "completed", at=timezone.now()) == 204
    after = twilio.dial_ended(dial, call_sid, "completed", leg_sid=leg_sid, seconds=95)
    assert after.verbs() == ["Hangup"]
    assert twilio.call_status(call_sid, "completed", at=timezone.now()) == 204

    call = the_call(call_sid)
    assert (call.state, call.end_reason) == (CallState.ENDED, "completed")
    assert status_of(dana) == AgentStatus.WRAP_UP
    assert ConnectAttempt.objects.filter(call=call).values_list("status_code", flat=True)[0] == 200
    assert TwilioCall.objects.get(call=call).dialled_via == TwilioDialPath.REST_UPDATE


def test_an_agent_whose_phone_does_not_answer_misses_the_call_and_another_agent_gets_it(
    twilio, twilio_api, queue, make_agent
):
    dana = make_agent("dana", extension="sip:dana@loyalty.sip.twilio.com", status="available")
    lee = make_agent("lee", extension="+14155550177", status=AgentStatus.AVAILABLE)
    idle_since(dana, 600)
    idle_since(lee, 60)
    call_sid = new_call_sid()
    enqueue = twilio.incoming_call(call_sid).only("Enqueue")

    first = offered(call_sid, dana)
    console_services.accept_offer(offer_id=first.id, agent_id=dana.id)
    (update,) = rest_updates(twilio_api, call_sid)
    twilio.left_queue(enqueue, call_sid, "redirected")
    (dial,) = update.twiml
    assert (dial[0].tag, dial[0].text) == ("Sip", "sip:dana@loyalty.sip.twilio.com")

    # Dana's phone rings out: the caller is queued again, and Lee is offered the call.
    back = twilio.dial_ended(dial, call_sid, "no-answer").only("Enqueue")
    assert back.attrib == enqueue.attrib
    assert status_of(dana) == AgentStatus.BREAK
    missed = dana.status_changes.first()
    assert missed.reason == "offer_timed_out"  # the console's missed call
    assert missed.not_ready_reason == "missed_call"  # the wall's reason
    second = offered(call_sid, lee)
    call = the_call(call_sid)
    assert call.decisions.filter(reason=DecisionReason.OFFER_TIMED_OUT, agent=dana).exists()

    # A repeated dial action for Dana changes nothing.
    assert twilio.dial_ended(dial, call_sid, "no-answer").only("Enqueue") is not None
    assert Offer.objects.get(pk=second.pk).state == OfferState.OFFERED

    console_services.accept_offer(offer_id=second.id, agent_id=lee.id)
    _, update = rest_updates(twilio_api, call_sid, count=2)
    (dial,) = update.twiml
    assert (dial[0].tag, dial[0].text) == ("Number", "+14155550177")
    assert twilio.agent_leg(dial[0], call_sid, new_call_sid(), "in-progress", timezone.now()) == 204
    call = the_call(call_sid)
    assert (call.state, call.agent) == (CallState.CONNECTED, lee)


def test_when_the_rest_update_cannot_be_delivered_the_wait_loop_sends_the_caller_to_the_agent(
    twilio, twilio_api, queue, make_agent
):
    dana = make_agent("dana", extension="client:dana", status=AgentStatus.AVAILABLE)
    twilio_api.script.extend([500] * 50)
    call_sid = new_call_sid()
    enqueue = twilio.incoming_call(call_sid).only("Enqueue")
    assert twilio.wait_round(enqueue, call_sid).verbs() == ["Pause", "Redirect"]

    offer = offered(call_sid, dana)
    console_services.accept_offer(offer_id=offer.id, agent_id=dana.id)
    wait_until(
        lambda: ConnectAttempt.objects.filter(call__telephony_call_id=call_sid, status_code=500),
        timeout=60,
    )

    # The next round of the wait loop: leave the queue; the enqueue action dials the agent.
    assert twilio.wait_round(enqueue, call_sid).verbs() == ["Leave"]
    dial = twilio.left_queue(enqueue, call_sid, "leave").only("Dial")
    assert (dial[0].tag, dial[0].text) == ("Client", "dana")
    assert TwilioCall.objects.get(call__telephony_call_id=call_sid).dialled_via == (
        TwilioDialPath.ENQUEUE_ACTION
    )

    # Twilio's API is back: the retries stop, the agent is not dialled a second time.
    twilio_api.script.clear()
    tried = len(rest_updates(twilio_api, call_sid))
    time.sleep(3.0)  # retries came 0.3 s, 0.6 s, 1.2 s apart
    assert len(rest_updates(twilio_api, call_sid)) <= tried + 1  # one may have been on its way
    assert not ConnectAttempt.objects.filter(
        call__telephony_call_id=call_sid, status_code=200
    ).exists()

    assert twilio.agent_leg(dial[0], call_sid, new_call_sid(), "in-progress", timezone.now()) == 204
    assert the_call(call_sid).state == CallState.CONNECTED
