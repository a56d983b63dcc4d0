"""Transfer and hang-up from the console on a Twilio call, with a real Celery worker and the
stand-in for api.twilio.com: the accepted hand-off is a REST update of the caller's live call to
a `<Dial>` of the colleague; his leg answered is the transfer (Dana wraps up, Lee is on the
call). Hang-up is a REST update that completes the call; a `<Dial>` bridge offers no hold."""

from __future__ import annotations

import pytest
from django.utils import timezone

from console import services as console_services
from infrastructure.errors import Refused
from routing import transfers
from routing.models import Agent, Call, Offer
from routing.states import AgentStatus, CallState, OfferState
from telephony import instructions
from telephony.models import ConnectAttempt
from tests.support.routing import database_url_for_workers, wait_until
from tests.support.twilio import new_call_sid, twilio_worker

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.slow,
    pytest.mark.timeout(120),
    pytest.mark.usefixtures("worker", "twilio_settings"),
]

NOTE = "exchange for the trail shoes, size 9 too small — label already sent"


@pytest.fixture(scope="module")
def worker(django_db_setup, django_db_blocker, twilio_api, tmp_path_factory):
    with django_db_blocker.unblock():
        database_url = database_url_for_workers()
    with twilio_worker(twilio_api, tmp_path_factory.mktemp("worker"), database_url) as queue:
        yield queue


def rest_updates(twilio_api, call_sid: str, count: int):
    def received():
        updates = [update for update in twilio_api.received if call_sid in update.path]
        return updates if len(updates) >= count else None

    return wait_until(received, timeout=30, every=0.1)


def status_of(agent: Agent) -> str:
    return Agent.objects.get(pk=agent.pk).status


@pytest.fixture
def dana_on_a_twilio_call(twilio, twilio_api, queue, make_agent):
    """Dana (client:dana) talks to a caller Rapport bridged through Twilio."""
    dana = make_agent("dana", extension="client:dana", status=AgentStatus.AVAILABLE)
    call_sid = new_call_sid()
    enqueue = twilio.incoming_call(call_sid).only("Enqueue")
    offer = wait_until(
        lambda: Offer.objects.filter(call__telephony_call_id=call_sid, agent=dana).first(),
        timeout=30,
    )
    console_services.accept_offer(offer_id=offer.id, agent_id=dana.id)
    (update,) = rest_updates(twilio_api, call_sid, 1)
    twilio.left_queue(enqueue, call_sid, "redirected")
    (client,) = update.twiml[0]
    twilio.agent_leg(client, call_sid, new_call_sid(), "in-progress", at=timezone.now())
    assert Call.objects.get(telephony_call_id=call_sid).state == CallState.CONNECTED
    return dana, call_sid


def test_an_accepted_hand_off_dials_the_colleague_and_his_answer_is_the_transfer(
    twilio, twilio_api, make_agent, dana_on_a_twilio_call
):
    dana, call_sid = dana_on_a_twilio_call
    lee = make_agent("lee", extension="client:lee", status=AgentStatus.AVAILABLE)
    call = Call.objects.get(telephony_call_id=call_sid)
    assert instructions.controls_for(call) == {"transfer": "twilio", "hangup": True, "hold": False}

    offer = transfers.request_transfer(
        agent_id=dana.id, telephony_call_id=call_sid, to_agent_id=lee.id, note=NOTE
    )
    console_services.accept_offer(offer_id=offer.id, agent_id=lee.id)

    update = rest_updates(twilio_api, call_sid, 2)[1]
    (dial,) = update.twiml
    (client,) = dial
    assert (dial.tag, client.tag, client.text) == ("Dial", "Client", "lee")
    assert f"decision={Offer.objects.get(id=offer.id).decision.id}" in dial.get("action")
    assert ConnectAttempt.objects.get(call=call, instruction="call.transfer").status_code == 200
    # Until Lee's leg answers, the caller is Dana's.
    assert Call.objects.get(id=call.id).agent_id == dana.id

    twilio.agent_leg(client, call_sid, new_call_sid(), "in-progress", at=timezone.now())

    call = Call.objects.get(id=call.id)
    assert (call.state, call.agent_id) == (CallState.TRANSFERRED, lee.id)
    assert (status_of(dana), status_of(lee)) == (AgentStatus.WRAP_UP, AgentStatus.BUSY)
    assert Offer.objects.get(id=offer.id).state == OfferState.ACCEPTED


def test_hang_up_from_the_console_completes_the_live_call_and_hold_is_not_offered(
    twilio_api, dana_on_a_twilio_call
):
    dana, call_sid = dana_on_a_twilio_call

    console_services.control_call(agent_id=dana.id, message={"type": "hangup", "call_id": call_sid})

    update = rest_updates(twilio_api, call_sid, 2)[1]
    assert update.form["Status"] == ["completed"]
    with pytest.raises(Refused) as refused:
        console_services.control_call(
            agent_id=dana.id, message={"type": "hold", "call_id": call_sid}
        )
    assert refused.value.field == "type"


def test_a_hand_off_lees_phone_does_not_answer_dials_the_caller_back_to_dana(
    twilio, twilio_api, make_agent, dana_on_a_twilio_call
):
    dana, call_sid = dana_on_a_twilio_call
    lee = make_agent("lee", extension="client:lee", status=AgentStatus.AVAILABLE)
    offer = transfers.request_transfer(
        agent_id=dana.id, telephony_call_id=call_sid, to_agent_id=lee.id, note=NOTE
    )
    console_services.accept_offer(offer_id=offer.id, agent_id=lee.id)
    (dial,) = rest_updates(twilio_api, call_sid, 2)[1].twiml

    after = twilio.dial_ended(dial, call_sid, "no-answer")

    (back,) = after.root
    (client,) = back
    assert (back.tag, client.tag, client.text) == ("Dial", "Client", "dana")
    call = Call.objects.get(telephony_call_id=call_sid)
    assert (call.state, call.agent_id) == (CallState.CONNECTED, dana.id)
    # Nobody on two calls or none: Dana keeps the caller; Lee missed a call.
    assert (status_of(dana), status_of(lee)) == (AgentStatus.BUSY, AgentStatus.BREAK)
    # Reported twice (Twilio retries), it changes nothing more.
    twilio.dial_ended(dial, call_sid, "no-answer")
    assert status_of(lee) == AgentStatus.BREAK
