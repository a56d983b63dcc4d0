"""Voicemail, the way Twilio plays it: when nobody of the queue is online the number's webhook
answers `<Record>`, and after a call back is asked the confirmation offers it; the test follows
`<Record>` as Twilio does (its action, then its recordingStatusCallback, signed by the `twilio`
package), and a local server stands in for Twilio's REST API (the audio, the DELETE). The
router runs in this process; with a real worker and the agent's socket:
tests/system/test_twilio_voicemail.py."""

from __future__ import annotations

import base64

import pytest
from django.contrib.auth.models import Group, User
from django.utils import timezone
from rest_framework.test import APIClient

from console import services as console_services
from customers.models import AccessReason, Consent, ContextAccess, Customer
from privacy.services import erase_customer, export_customer
from routing import agent_status, offers, router
from routing.models import (
    Agent,
    Call,
    Callback,
    CallbackState,
    Offer,
    Voicemail,
)
from routing.states import AgentStatus, CallState, OfferState
from telephony.models import RecordingDeletion
from telephony.twilio import recordings
from tests.support.routing import past_call, tasks_published
from tests.support.twilio import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    CUSTOMER_NUMBER,
    RECORDING_AUDIO,
    new_call_sid,
    recording_url,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("twilio_settings")]


@pytest.fixture
def team(make_agent, queue):
    """Dana and Sam, both offline: nobody of the queue can answer."""
    queue.last_agent_wait_seconds = 60
    queue.save()
    return make_agent("dana", extension="client:dana"), make_agent("sam", extension="client:sam")


@pytest.fixture
def maya(make_customer, team, queue) -> Customer:
    customer = make_customer("Maya Chen", phones=[CUSTOMER_NUMBER], consent="open")
    past_call(customer=customer, agent=team[0], queue=queue, days_ago=3)
    return customer


def the_call(call_sid: str) -> Call:
    return Call.objects.get(telephony_call_id=call_sid)


def left_a_message(twilio, call_sid: str, *, seconds: int = 23):
    answer = twilio.incoming_call(call_sid)
    assert answer.verbs() == ["Say", "Record", "Hangup"]
    after, code, sid = twilio.record(answer.root[1], call_sid, seconds=seconds)
    assert after.verbs() == ["Say", "Hangup"]
    return code, sid


def online(agent) -> None:
    agent_status.set_status(
        agent=Agent.objects.get(pk=agent.pk), status=AgentStatus.AVAILABLE, reason="test"
    )
    router.offer_next_call(agent.pk)


def card_of(sent, agent) -> dict:
    return [m for agent_id, m in sent if agent_id == agent.pk and m["type"] == "offer"][-1]


def listen(user, voicemail_id: int):
    client = APIClient()
    client.force_authenticate(user)
    return client.get(f"/api/voicemails/{voicemail_id}/audio/")


def test_nobody_online_the_caller_leaves_a_message_offered_to_their_last_agent_first(
    twilio, maya, team, sent
):
    dana, sam = team
    call_sid = new_call_sid()
    answer = twilio.incoming_call(call_sid)

    assert answer.verbs() == ["Say", "Record", "Hangup"]
    said, record = answer.root[0].text, answer.root[1]
    assert "nobody can take your call" in said and "leave a message" in said
    assert (record.get("maxLength"), record.get("playBeep")) == ("120", "true")
    assert record.get("action").endswith("/api/telephony/twilio/recorded/")
    assert record.get("recordingStatusCallback").endswith("/api/telephony/twilio/recording/")
    # The call left the queue: let go to leave a message, not abandoned.
    call = the_call(call_sid)
    place = call.queued_at
    assert (call.state, call.end_reason) == (CallState.ENDED, "voicemail")

    after, code, sid = twilio.record(record, call_sid, seconds=23)
    assert after.verbs() == ["Say", "Hangup"] and code == 204
    assert twilio.call_status(call_sid, "completed", at=timezone.now()) == 204
    assert (the_call(call_sid).state, the_call(call_sid).end_reason) == (
        CallState.ENDED,
        "voicemail",
    )

    voicemail = Voicemail.objects.get(recording_sid=sid)
    assert (voicemail.call, voicemail.customer, voicemail.duration_seconds) == (call, maya, 23)
    assert voicemail.recording_url == recording_url(sid)
    callback = voicemail.callback
    assert (callback.state, callback.number, callback.place, callback.attempts) == (
        CallbackState.WAITING,
        CUSTOMER_NUMBER,
        place,
        1,
    )
    attempt = Call.objects.get(callback=callback)
    router.route_call(attempt.pk)

    # Twilio posts the recording again: nothing changes.
    assert (
        twilio.recording_status(
            record,
            {
                "CallSid": call_sid,
                "RecordingSid": sid,
                "RecordingUrl": recording_url(sid),
                "RecordingDuration": "23",
                "RecordingStatus": "completed",
            },
        )
        == 204
    )
    assert (Voicemail.objects.count(), Callback.objects.count()) == (1, 1)

    # Dana comes online: the call back is hers first, with the message on its card.
    online(dana)
    assert Offer.objects.get(call=attempt, state=OfferState.OFFERED).agent == dana
    assert card_of(sent, dana)["callback"]["message"] == {
        "id": voicemail.pk,
        "duration_seconds": 23,
    }


def test_a_caller_waiting_when_the_last_agent_of_the_queue_goes_offline_is_asked_for_a_message(
    twilio, maya, team
):
    """Sam, the one agent online, is on another call; Maya waits. His shift ends: at the next
    round of the wait she leaves the queue and is asked for a message, as a caller ringing now
    would be, instead of waiting for nobody."""
    dana, sam = team
    agent_status.set_status(agent=sam, status=AgentStatus.BUSY, reason="test")
    call_sid = new_call_sid()
    enqueue = twilio.incoming_call(call_sid).only("Enqueue")
    router.route_call(the_call(call_sid).pk)
    assert "Leave" not in twilio.wait_round(enqueue, call_sid).verbs()

    agent_status.set_status(agent=sam, status=AgentStatus.OFFLINE, reason="test")
    assert twilio.wait_round(enqueue, call_sid).verbs() == ["Leave"]
    asked = twilio.left_queue(enqueue, call_sid, "leave")

    assert asked.verbs() == ["Say", "Record", "Hangup"]
    assert (the_call(call_sid).state, the_call(call_sid).end_reason) == (
        CallState.ENDED,
        "voicemail",
    )
    _, code, sid = twilio.record(asked.root[1], call_sid, seconds=12)
    assert code == 204
    assert Voicemail.objects.get(recording_sid=sid).callback.number == CUSTOMER_NUMBER


def test_an_empty_or_failed_recording_is_not_a_message(twilio, maya, team):
    for seconds, status in ((0, "completed"), (12, "failed"), (12, "absent")):
        call_sid = new_call_sid()
        answer = twilio.incoming_call(call_sid)
        _, code, _ = twilio.record(answer.root[1], call_sid, seconds=seconds, status=status)
        assert code == 204

    assert not Voicemail.objects.exists()
    assert not Callback.objects.exists()


def test_a_recording_of_an_unknown_call_or_with_bad_fields_is_a_4xx_naming_the_field(
    twilio, maya, team
):
    call_sid = new_call_sid()
    record = twilio.incoming_call(call_sid).root[1]
    sid = "RE" + "a" * 32
    good = {
        "CallSid": call_sid,
        "RecordingSid": sid,
        "RecordingUrl": recording_url(sid),
        "RecordingDuration": "5",
        "RecordingStatus": "completed",
    }
    url = record.get("recordingStatusCallback")

    unknown = twilio.request(url, {**good, "CallSid": new_call_sid()})
    assert unknown.status_code == 404 and "CallSid" in unknown.json()["errors"]
    for field, value in (
        ("RecordingSid", "not-a-sid"),
        ("RecordingDuration", "five"),
        ("RecordingStatus", "done"),
        ("RecordingUrl", "https://evil.example.com/a.wav"),
        ("RecordingUrl", recording_url(sid).replace(ACCOUNT_SID, "AC" + "f" * 32)),
    ):
        bad = twilio.request(url, {**good, field: value})
        assert bad.status_code == 400 and field in bad.json()["errors"], (field, bad.content)
    assert not Voicemail.objects.exists()


def test_a_message_after_asking_for_a_call_back_joins_that_call_back(
    twilio, make_agent, maya, team, queue, sent
):
    dana, _ = team
    call_sid, confirmed = asks_for_a_call_back(twilio, team)
    assert confirmed.verbs() == ["Say", "Record", "Hangup"]
    assert "leave a message for Dana if you like, or just hang up" in confirmed.root[0].text

    _, code, sid = twilio.record(confirmed.root[1], call_sid, seconds=9)

    assert code == 204
    callback = Callback.objects.get()
    assert Voicemail.objects.get(recording_sid=sid).callback == callback
    assert the_call(call_sid).end_reason == "callback_requested"


def test_a_message_from_a_number_whose_call_back_waits_joins_it(twilio, maya, team):
    _, first = left_a_message(twilio, new_call_sid(), seconds=10)
    _, second = left_a_message(twilio, new_call_sid(), seconds=20)

    callback = Callback.objects.get()
    assert set(callback.voicemails.values_list("recording_sid", flat=True)) == {first, second}
    # The second call was matched to the waiting call back; its message sets it waiting again.
    assert callback.state == CallbackState.WAITING and callback.finished_at is None
    assert Call.objects.filter(callback=callback, state=CallState.QUEUED).count() == 1


def test_the_message_is_heard_from_rapport_by_the_agent_it_rings_for_and_every_listen_is_audited(
    twilio, twilio_api, maya, team, sent
):
    dana, sam = team
    left_a_message(twilio, new_call_sid())
    voicemail = Voicemail.objects.get()
    attempt = Call.objects.get(callback=voicemail.callback)
    router.route_call(attempt.pk)
    # Not Dana's yet (nothing rings for her): not hers to hear.
    assert listen(dana.user, voicemail.pk).status_code == 404

    online(dana)
    twilio_api.received.clear()
    heard = listen(dana.user, voicemail.pk)

    assert heard.status_code == 200
    assert heard["content-type"] == "audio/x-wav"
    assert b"".join(heard.streaming_content) == RECORDING_AUDIO
    fetched = twilio_api.received[-1]
    assert (fetched.method, fetched.path) == (
        "GET",
        f"/2010-04-01/Accounts/{ACCOUNT_SID}/Recordings/{voicemail.recording_sid}.wav",
    )
    credentials = base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()
    assert fetched.authorization == f"Basic {credentials}"
    assert (
        ContextAccess.objects.filter(
            customer=maya, user=dana.user, reason=AccessReason.VOICEMAIL, call_id=attempt.pk
        ).count()
        == 1
    )
    assert listen(dana.user, voicemail.pk).status_code == 200
    assert ContextAccess.objects.filter(reason=AccessReason.VOICEMAIL).count() == 2

    # Another agent: no. Dana once the call back is no longer hers (she declined it): no.
    assert listen(sam.user, voicemail.pk).status_code == 404
    offers.decline_offer(
        offer_id=Offer.objects.get(call=attempt, state=OfferState.OFFERED).pk, agent_id=dana.pk
    )
    assert listen(dana.user, voicemail.pk).status_code == 404
    assert listen(dana.user, 999999).status_code == 404

    # A supervisor may (they see the call backs list); audited too.
    morgan = User.objects.create_user("morgan")
    morgan.groups.add(Group.objects.get_or_create(name="supervisor")[0])
    assert listen(morgan, voicemail.pk).status_code == 200
    assert ContextAccess.objects.filter(user=morgan, reason=AccessReason.VOICEMAIL).exists()


def test_erasing_the_customer_deletes_their_messages_here_and_at_twilio_retried_while_down(
    twilio, twilio_api, settings, maya, team
):
    _, sid = left_a_message(twilio, new_call_sid())
    staff = User.objects.create_user("privacy-officer", is_staff=True)
    reachable = settings.TWILIO_API_BASE_URL
    settings.TWILIO_API_BASE_URL = "http://127.0.0.1:9"  # Twilio down

    with tasks_published() as published:
        erase_customer(customer=maya, erased_by=staff)

    assert (recordings.DELETE_RECORDINGS, ()) in published
    assert not Voicemail.objects.exists() and not Callback.objects.exists()
    assert recordings.delete_pending_recordings() == 1
    kept = RecordingDeletion.objects.get()
    assert (kept.recording_sid, kept.attempts) == (sid, 1)
    assert recordings.any_deletion_pending()

    settings.TWILIO_API_BASE_URL = reachable
    twilio_api.received.clear()
    assert recordings.delete_pending_recordings() == 0

    deleted = twilio_api.received[-1]
    assert (deleted.method, deleted.path) == (
        "DELETE",
        f"/2010-04-01/Accounts/{ACCOUNT_SID}/Recordings/{sid}.json",
    )
    assert not RecordingDeletion.objects.exists()


def test_a_recording_twilio_no_longer_has_counts_as_deleted(twilio, twilio_api, maya, team):
    left_a_message(twilio, new_call_sid())
    erase_customer(customer=maya, erased_by=User.objects.create_user("officer", is_staff=True))
    twilio_api.script.append(404)

    assert recordings.delete_pending_recordings() == 0
    assert not RecordingDeletion.objects.exists()


def test_a_closed_consent_callers_card_shows_their_message_as_what_the_call_needs(
    twilio, maya, team, sent
):
    dana, _ = team
    Customer.objects.filter(pk=maya.pk).update(consent=Consent.CLOSED)
    left_a_message(twilio, new_call_sid(), seconds=42)
    voicemail = Voicemail.objects.get()
    router.route_call(Call.objects.get(callback=voicemail.callback).pk)

    online(dana)

    card = card_of(sent, dana)
    assert card["callback"]["message"] == {"id": voicemail.pk, "duration_seconds": 42}
    assert card["caller"]["customer"]["history_hidden"] is True


def test_a_message_that_comes_after_the_agent_took_the_call_back_is_drawn_on_their_card(
    twilio, maya, team, sent
):
    dana, _ = team
    call_sid, confirmed = asks_for_a_call_back(twilio, team)
    attempt = Call.objects.get(callback=Callback.objects.get())
    router.route_call(attempt.pk)
    online(dana)
    offer = Offer.objects.get(call=attempt, agent=dana, state=OfferState.OFFERED)
    assert card_of(sent, dana)["callback"]["message"] is None
    console_services.accept_offer(offer_id=offer.pk, agent_id=dana.pk)

    _, code, sid = twilio.record(confirmed.root[1], call_sid, seconds=31)

    assert code == 204
    drawn = [m for agent_id, m in sent if agent_id == dana.pk and m["type"] == "call"][-1]
    assert drawn["call_id"] == attempt.telephony_call_id
    assert drawn["callback"]["message"] == {
        "id": Voicemail.objects.get(recording_sid=sid).pk,
        "duration_seconds": 31,
    }


def test_a_message_that_comes_while_the_call_back_rings_is_drawn_on_the_ringing_card(
    twilio, maya, team, sent
):
    dana, _ = team
    call_sid, confirmed = asks_for_a_call_back(twilio, team)
    attempt = Call.objects.get(callback=Callback.objects.get())
    router.route_call(attempt.pk)
    online(dana)
    assert card_of(sent, dana)["callback"]["message"] is None

    _, code, sid = twilio.record(confirmed.root[1], call_sid, seconds=17)

    assert code == 204
    state = [m for agent_id, m in sent if agent_id == dana.pk and m["type"] == "state"][-1]
    assert state["offer"]["call_id"] == attempt.telephony_call_id
    assert state["offer"]["callback"]["message"] == {
        "id": Voicemail.objects.get(recording_sid=sid).pk,
        "duration_seconds": 17,
    }


def test_the_customers_export_lists_their_messages(twilio, maya, team):
    call_sid = new_call_sid()
    _, sid = left_a_message(twilio, call_sid, seconds=17)

    exported = export_customer(customer=maya, exported_by=User.objects.create_user("officer"))

    assert exported["voicemails"] == [
        {
            "call_id": call_sid,
            "created_at": Voicemail.objects.get().created_at.isoformat(),
            "duration_seconds": 17,
            "recording_url": recording_url(sid),
        }
    ]


def asks_for_a_call_back(twilio, team):
    """Dana is busy with another caller, Sam is free: Maya, held for Dana and asked, presses 3.
    Returns her call's sid and the TwiML that confirms the call back."""
    dana, sam = team
    agent_status.set_status(agent=dana, status=AgentStatus.BUSY, reason="test")
    agent_status.set_status(agent=sam, status=AgentStatus.AVAILABLE, reason="test")
    call_sid = new_call_sid()
    enqueue = twilio.incoming_call(call_sid).only("Enqueue")
    router.route_call(the_call(call_sid).pk)
    asked = twilio.wait_round(enqueue, call_sid)
    twilio.press(asked.root[0], call_sid, "3")
    return call_sid, twilio.left_queue(enqueue, call_sid, "leave")
