"""A call back placed by a phone system of our own format, reported under a `call_id` of its own
choosing with `metadata.callback_id` (docs/telephony.md, "Call backs"): its events, signed with
`standardwebhooks`, posted to the application as the server runs it and applied by the worker's
task off the broker, are the try's, in any order, repeated, whatever comes first."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from routing.models import Agent, Call, Callback, CallbackState
from routing.states import AgentStatus, CallState
from telephony.models import CallEvent, PlacedCall
from tests.support.telephony import event
from tests.telephony.conftest import MAYA
from tests.telephony.test_callback_requested_event import accepted_by, asks_for_a_call_back

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def placing(phone_system, settings, dana, maya, control_url, sent):
    """Maya asked for a call back; Dana accepted it; Rapport pushed `call.dial`."""
    settings.TELEPHONY_CONTROL_URL = control_url
    callback = asks_for_a_call_back(phone_system)
    attempt, _ = accepted_by(dana, callback, sent)
    return callback, attempt


def placed(type_: str, call_id: str, callback: Callback, at: datetime, **fields) -> dict:
    return event(type_, call_id, at, metadata={"callback_id": callback.pk}, **fields)


def test_events_under_the_phone_systems_id_are_the_trys_in_any_order_and_repeated(
    phone_system, placing, dana
):
    callback, attempt = placing
    now = datetime.now(tz=UTC)
    answered = placed("call.answered", "PBX-777", callback, now, agent="1001")
    # The end overtakes the answer, and the answer comes twice.
    ended = phone_system.post(
        placed("call.ended", "PBX-777", callback, now + timedelta(seconds=40), reason="completed")
    )
    first = phone_system.post(answered, webhook_id="answer-1")
    again = phone_system.post(answered, webhook_id="answer-1")

    assert [r.status_code for r in (ended, first, again)] == [202, 202, 202]
    assert again.json()["duplicate"] is True
    attempt.refresh_from_db()
    assert (attempt.state, attempt.agent_id, attempt.connected_at) == (
        CallState.ENDED,
        dana.pk,
        now,
    )
    assert attempt.telephony_call_id.startswith("callback-")
    assert PlacedCall.objects.get().call == attempt
    assert CallEvent.objects.filter(call=attempt, type="call.answered").count() == 1
    # No call of its own was made of the phone system's id.
    assert not Call.objects.filter(telephony_call_id="PBX-777").exists()
    callback.refresh_from_db()
    assert callback.state == CallbackState.REACHED
    assert Agent.objects.get(pk=dana.pk).status == AgentStatus.WRAP_UP


def test_ringing_first_then_answered_then_ended(phone_system, placing, dana):
    callback, attempt = placing
    now = datetime.now(tz=UTC)
    for type_, seconds, fields in (
        ("call.ringing", 0, {"from": "+18005550100", "to": MAYA}),
        ("call.answered", 5, {"agent": "1001"}),
        ("call.ended", 60, {"reason": "completed"}),
    ):
        posted = phone_system.post(
            placed(type_, "PBX-778", callback, now + timedelta(seconds=seconds), **fields)
        )
        assert posted.status_code == 202, posted.content

    attempt.refresh_from_db()
    assert (attempt.state, attempt.agent_id) == (CallState.ENDED, dana.pk)
    callback.refresh_from_db()
    assert callback.state == CallbackState.REACHED


def test_not_answered_under_the_phone_systems_id_is_tried_again(phone_system, placing, queue):
    callback, attempt = placing
    queue.callback_retry_seconds = 600
    queue.save()

    posted = phone_system.post(
        placed("call.ended", "PBX-779", callback, datetime.now(tz=UTC), reason="no-answer")
    )

    assert posted.status_code == 202
    attempt.refresh_from_db()
    assert (attempt.state, attempt.end_reason) == (CallState.ENDED, "no-answer")
    callback.refresh_from_db()
    assert callback.state == CallbackState.WAITING and callback.next_attempt_at is not None


def test_a_callback_id_with_no_try_being_placed_is_400_naming_it(
    phone_system,
    settings,
    dana,
    maya,
    control_url,
):
    settings.TELEPHONY_CONTROL_URL = control_url
    callback = asks_for_a_call_back(phone_system)  # waiting: nobody accepted it yet
    now = datetime.now(tz=UTC)
    events_before = CallEvent.objects.count()

    for callback_id in (callback.pk, 999999, "abc", True, -3):
        refused = phone_system.post(
            event(
                "call.answered", "PBX-780", now, agent="1001", metadata={"callback_id": callback_id}
            )
        )
        assert refused.status_code == 400, (callback_id, refused.content)
        assert "metadata.callback_id" in refused.json()["errors"], refused.json()

    assert CallEvent.objects.count() == events_before
    assert not Call.objects.filter(telephony_call_id="PBX-780").exists()
