"""Twilio's webhooks, signed by the `twilio` package as Twilio signs them: who may call them,
what they record, and what a caller hears, through retries, callbacks out of order, a hang-up
in the queue and a transfer. The router runs in this process; tests/system/test_twilio_calls.py runs
whole calls with a real worker."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from console import services as console_services
from routing import router
from routing.models import Call, Offer
from routing.states import AgentStatus, CallState, OfferState
from telephony.connect import resend_lost_connects
from telephony.models import CallEvent, TwilioCall
from telephony.twilio import calls as twilio_calls
from tests.support.routing import tasks_published
from tests.support.twilio import ACCOUNT_SID, PUBLIC_BASE_URL, Twilio, new_call_sid, timestamp

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("twilio_settings")]

VOICE_URL = f"{PUBLIC_BASE_URL}/api/telephony/twilio/voice/"
INCOMING = {"CallStatus": "ringing", "From": "+14155550123", "To": "+18005550100"}


def the_call(call_sid: str) -> Call:
    return Call.objects.select_related("agent").get(telephony_call_id=call_sid)


def statuses(*agents) -> list[str]:
    return [type(agent).objects.get(pk=agent.pk).status for agent in agents]


def accepted_by(agent, call_sid: str, twilio_api=None) -> Offer:
    """The router offers the call to `agent`, who accepts it in the console; with `twilio_api`
    Rapport's REST update reaches the stand-in Twilio (the worker's task, run here)."""
    call = the_call(call_sid)
    router.route_call(call.pk)
    offer = Offer.objects.get(call=call, agent=agent, state=OfferState.OFFERED)
    with tasks_published() as published:
        console_services.accept_offer(offer_id=offer.id, agent_id=agent.id)
    assert published == [("telephony.twilio_dial_agent", (call.pk, offer.decision.pk))]
    if twilio_api is not None:
        assert twilio_calls.dial_agent_by_rest_update(call_pk=call.pk, decision_pk=None) is None
    return offer


# --- who may call ------------------------------------------------------------------------


def test_it_answers_a_signed_incoming_call_with_enqueue_on_rapports_public_urls(twilio, queue):
    call_sid = new_call_sid()

    enqueue = twilio.incoming_call(call_sid).only("Enqueue")

    assert enqueue.text == "loyalty"
    assert enqueue.get("waitUrl") == f"{PUBLIC_BASE_URL}/api/telephony/twilio/wait/"
    assert enqueue.get("action") == f"{PUBLIC_BASE_URL}/api/telephony/twilio/enqueue-action/"
    call = the_call(call_sid)
    assert (call.state, call.from_e164, call.queue) == (CallState.QUEUED, "+14155550123", queue)


def test_a_bad_or_missing_signature_is_refused_with_403_and_records_nothing(twilio, client):
    forged = Twilio(client, auth_token="0" * 32)
    for response in (
        twilio.request(VOICE_URL, {**INCOMING, "CallSid": new_call_sid()}, signature="bm9wZQ=="),
        twilio.request(VOICE_URL, {**INCOMING, "CallSid": new_call_sid()}, signature=""),
        forged.request(VOICE_URL, {**INCOMING, "CallSid": new_call_sid()}),
    ):
        assert response.status_code == 403, response.content
    assert not Call.objects.exists()


def test_a_request_for_another_account_is_refused_with_403(client):
    other = Twilio(client, account_sid="AC" + "f" * 32)

    response = other.request(VOICE_URL, {**INCOMING, "CallSid": new_call_sid()})

    assert response.status_code == 403
    assert b"AccountSid" in response.content
    assert not Call.objects.exists()


def test_a_tampered_field_breaks_the_signature(twilio, client):
    params = {**INCOMING, "CallSid": new_call_sid(), "AccountSid": ACCOUNT_SID}
    signature = twilio.validator.compute_signature(VOICE_URL, params)

    response = twilio.request(VOICE_URL, {**params, "From": "+14155550999"}, signature=signature)

    assert response.status_code == 403


def test_without_a_twilio_account_the_endpoints_are_not_there(twilio, settings):
    settings.TWILIO_ACCOUNT_SID = ""

    response = twilio.request(VOICE_URL, {**INCOMING, "CallSid": new_call_sid()})

    assert response.status_code == 404


def test_missing_or_malformed_fields_are_400_naming_the_field(twilio):
    missing = twilio.request(VOICE_URL, {"CallStatus": "ringing", "From": "+14155550123"})
    assert missing.status_code == 400
    assert "CallSid" in missing.json()["errors"]

    no_to = twilio.request(VOICE_URL, {"CallSid": new_call_sid(), "From": "+14155550123"})
    assert no_to.json()["errors"].keys() == {"To"}

    bad_time = twilio.request(
        f"{PUBLIC_BASE_URL}/api/telephony/twilio/status/",
        {"CallSid": new_call_sid(), "CallStatus": "completed", "Timestamp": "yesterday"},
    )
    assert bad_time.status_code == 400
    assert bad_time.json()["errors"].keys() == {"Timestamp"}

    bad_result = twilio.request(
        f"{PUBLIC_BASE_URL}/api/telephony/twilio/enqueue-action/",
        {"CallSid": new_call_sid(), "QueueResult": "sideways"},
    )
    assert bad_result.json()["errors"].keys() == {"QueueResult"}


def test_behind_a_proxy_the_signature_is_checked_against_the_public_url(twilio, settings):
    """Twilio signs https://rapport.example.com/...; the request reaches Django as plain HTTP on
    localhost:8000. The configured public base URL is what makes the signature match."""
    settings.TWILIO_PUBLIC_BASE_URL = ""
    assert twilio.request(VOICE_URL, {**INCOMING, "CallSid": new_call_sid()}).status_code == 403

    settings.TWILIO_PUBLIC_BASE_URL = PUBLIC_BASE_URL + "/"
    assert twilio.request(VOICE_URL, {**INCOMING, "CallSid": new_call_sid()}).status_code == 200


def test_without_a_public_url_the_url_django_sees_is_the_one_checked(twilio, settings):
    settings.TWILIO_PUBLIC_BASE_URL = ""
    direct = "http://localhost:8000/api/telephony/twilio/voice/"

    enqueue = twilio.twiml(direct, {**INCOMING, "CallSid": new_call_sid()}).only("Enqueue")

    assert enqueue.get("waitUrl") == "http://localhost:8000/api/telephony/twilio/wait/"


def test_signed_but_hostile_input_is_never_a_500(twilio, settings):
    call_sid = new_call_sid()
    odd = {**INCOMING, "CallSid": call_sid, "CallerName": "Maya\x00Chen", "x\x00": "1"}
    assert twilio.request(VOICE_URL, odd).status_code == 200
    assert CallEvent.objects.get(call__telephony_call_id=call_sid).payload["CallerName"] == (
        "MayaChen"
    )

    settings.TWILIO_PUBLIC_BASE_URL = ""
    direct = "http://localhost:99999/api/telephony/twilio/voice/"
    not_a_port = twilio.request(
        direct, {**INCOMING, "CallSid": new_call_sid()}, host="localhost:99999"
    )
    assert not_a_port.status_code in (400, 403)


def test_a_caller_twilio_could_not_queue_is_queued_again_after_a_pause(twilio, queue):
    call_sid = new_call_sid()
    enqueue = twilio.incoming_call(call_sid).only("Enqueue")

    again = twilio.left_queue(enqueue, call_sid, "queue-full")

    assert again.verbs() == ["Pause", "Enqueue"]
    assert again.root[1].attrib == enqueue.attrib
    assert the_call(call_sid).state == CallState.QUEUED


# --- retries and order ---------------------------------------------------------------------


def test_a_retried_incoming_call_is_recorded_once(twilio, queue):
    call_sid = new_call_sid()

    first = twilio.incoming_call(call_sid).only("Enqueue")
    again = twilio.incoming_call(call_sid).only("Enqueue")

    assert first.attrib == again.attrib
    assert Call.objects.count() == 1
    assert TwilioCall.objects.count() == 1
    assert CallEvent.objects.filter(call__telephony_call_id=call_sid).count() == 1


def test_the_caller_hanging_up_in_the_queue_abandons_the_call_and_frees_the_agent_it_rang(
    twilio, queue, make_agent
):
    dana = make_agent("dana", extension="client:dana", status=AgentStatus.AVAILABLE)
    call_sid = new_call_sid()
    enqueue = twilio.incoming_call(call_sid).only("Enqueue")
    router.route_call(the_call(call_sid).pk)
    offer = Offer.objects.get(call__telephony_call_id=call_sid, agent=dana)

    hung_up = twilio.left_queue(enqueue, call_sid, "hangup")
    assert hung_up.verbs() == ["Hangup"]
    assert twilio.call_status(call_sid, "completed", at=timezone.now()) == 204
    assert twilio.call_status(call_sid, "completed", at=timezone.now()) == 204

    call = the_call(call_sid)
    assert (call.state, call.end_reason) == (CallState.ABANDONED, "abandoned")
    assert Offer.objects.get(pk=offer.pk).state == OfferState.WITHDRAWN
    assert statuses(dana) == [AgentStatus.AVAILABLE]
    assert CallEvent.objects.filter(call=call, type="call.ended").count() == 1


def test_an_answer_reported_after_the_hang_up_still_counts_the_call_as_answered(
    twilio, twilio_api, queue, make_agent
):
    """Twilio's callbacks may arrive in any order: the number's `completed` (stamped 30 s in)
    before the agent leg's `in-progress` (stamped 10 s in). The call is not left abandoned."""
    dana = make_agent("dana", extension="client:dana", status=AgentStatus.AVAILABLE)
    call_sid = new_call_sid()
    twilio.incoming_call(call_sid)
    accepted_by(dana, call_sid, twilio_api)
    dial = twilio_api.received[-1].twiml[0]
    rang_at = timezone.now().replace(microsecond=0)

    assert twilio.call_status(call_sid, "completed", at=rang_at + timedelta(seconds=30)) == 204
    assert the_call(call_sid).state == CallState.ABANDONED
    leg_sid = new_call_sid()
    answered_at = rang_at + timedelta(seconds=10)
    assert twilio.agent_leg(dial[0], call_sid, leg_sid, "in-progress", at=answered_at) == 204
    assert twilio.agent_leg(dial[0], call_sid, leg_sid, "in-progress", at=answered_at) == 204

    call = the_call(call_sid)
    assert (call.state, call.agent, call.connected_at) == (CallState.ENDED, dana, answered_at)
    assert CallEvent.objects.filter(call=call, type="call.answered").count() == 1


def test_the_dial_action_and_the_agent_legs_callback_report_one_answer(
    twilio, twilio_api, queue, make_agent
):
    """The agent leg's `answered` callback was lost; the dial action says the same (one event),
    and a late duplicate of the callback changes nothing."""
    dana = make_agent("dana", extension="client:dana", status=AgentStatus.AVAILABLE)
    call_sid = new_call_sid()
    twilio.incoming_call(call_sid)
    accepted_by(dana, call_sid, twilio_api)
    dial = twilio_api.received[-1].twiml[0]
    leg_sid = new_call_sid()

    after = twilio.dial_ended(dial, call_sid, "completed", leg_sid=leg_sid, seconds=42)
    assert after.verbs() == ["Hangup"]
    assert twilio.agent_leg(dial[0], call_sid, leg_sid, "in-progress", at=timezone.now()) == 204
    assert twilio.agent_leg(dial[0], call_sid, leg_sid, "completed", at=timezone.now()) == 204
    assert twilio.call_status(call_sid, "completed", at=timezone.now()) == 204

    call = the_call(call_sid)
    assert (call.state, call.agent, call.end_reason) == (CallState.ENDED, dana, "completed")
    assert CallEvent.objects.filter(call=call, type="call.answered").count() == 1
    assert statuses(dana) == [AgentStatus.WRAP_UP]


# --- a transfer ----------------------------------------------------------------------------


def test_a_leg_to_another_agent_answered_on_a_connected_call_is_a_transfer(
    twilio, twilio_api, queue, make_agent
):
    """The agent hands the caller on at Twilio (the caller's call redirected to a `<Dial>` of
    the colleague, its status callback on Rapport): the call moves to the colleague."""
    dana = make_agent("dana", extension="client:dana", status=AgentStatus.AVAILABLE)
    lee = make_agent("lee", extension="+14155550177", status=AgentStatus.AVAILABLE)
    call_sid = new_call_sid()
    twilio.incoming_call(call_sid)
    accepted_by(dana, call_sid, twilio_api)
    dial = twilio_api.received[-1].twiml[0]
    now = timezone.now()
    assert twilio.agent_leg(dial[0], call_sid, new_call_sid(), "in-progress", at=now) == 204
    assert the_call(call_sid).state == CallState.CONNECTED

    transfer_leg = {
        "CallSid": new_call_sid(),
        "ParentCallSid": call_sid,
        "CallStatus": "in-progress",
        "To": "+14155550177",
        "Timestamp": timestamp(now + timedelta(seconds=60)),
    }
    response = twilio.request(f"{PUBLIC_BASE_URL}/api/telephony/twilio/agent-status/", transfer_leg)
    assert response.status_code == 204

    call = the_call(call_sid)
    assert (call.state, call.agent) == (CallState.TRANSFERRED, lee)
    assert statuses(dana, lee) == [AgentStatus.WRAP_UP, AgentStatus.BUSY]


def test_an_answer_twilio_stamps_far_in_the_future_is_taken_as_now_and_freezes_nothing(
    twilio, twilio_api, queue, make_agent
):
    """Twilio cannot be asked to send a callback again: a `Timestamp` far ahead of Rapport's
    clock is taken as the moment it arrived, so the call's next events still apply."""
    dana = make_agent("dana", extension="client:dana", status=AgentStatus.AVAILABLE)
    lee = make_agent("lee", extension="+14155550177", status=AgentStatus.AVAILABLE)
    call_sid = new_call_sid()
    twilio.incoming_call(call_sid)
    accepted_by(dana, call_sid, twilio_api)
    dial = twilio_api.received[-1].twiml[0]
    far_future = timezone.now().replace(year=2099)

    assert twilio.agent_leg(dial[0], call_sid, new_call_sid(), "in-progress", at=far_future) == 204
    answered = CallEvent.objects.get(call__telephony_call_id=call_sid, type="call.answered")
    assert answered.occurred_at <= timezone.now()
    transfer_leg = {
        "CallSid": new_call_sid(),
        "ParentCallSid": call_sid,
        "CallStatus": "in-progress",
        "To": "+14155550177",
        "Timestamp": timestamp(timezone.now() + timedelta(seconds=60)),
    }
    response = twilio.request(f"{PUBLIC_BASE_URL}/api/telephony/twilio/agent-status/", transfer_leg)
    assert response.status_code == 204

    assert (the_call(call_sid).state, the_call(call_sid).agent) == (CallState.TRANSFERRED, lee)
    assert statuses(dana, lee) == [AgentStatus.WRAP_UP, AgentStatus.BUSY]


# --- a lost instruction --------------------------------------------------------------------


def test_a_lost_rest_update_is_sent_again_by_the_sweeper_unless_the_caller_was_dialled(
    twilio, queue, make_agent
):
    """The message that would have updated the live call was lost with the broker: the
    router's sweeper asks for it again, and the wait loop sends the caller to the agent
    meanwhile; once that dialled the agent, nothing is sent again."""
    dana = make_agent("dana", extension="client:dana", status=AgentStatus.AVAILABLE)
    call_sid = new_call_sid()
    enqueue = twilio.incoming_call(call_sid).only("Enqueue")
    offer = accepted_by(dana, call_sid)
    Offer.objects.filter(pk=offer.pk).update(responded_at=timezone.now() - timedelta(seconds=30))

    with tasks_published() as published:
        resend_lost_connects()
    assert published == [("telephony.twilio_dial_agent", (offer.call_id, offer.decision.pk))]

    assert twilio.wait_round(enqueue, call_sid).verbs() == ["Leave"]
    assert twilio.left_queue(enqueue, call_sid, "leave").only("Dial")[0].text == "dana"
    with tasks_published() as published:
        resend_lost_connects()
    assert published == []
    assert twilio.wait_round(enqueue, call_sid).verbs() == ["Pause", "Redirect"]
