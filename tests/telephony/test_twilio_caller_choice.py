"""The caller's choice while held for their busy last agent, the way Twilio plays it: the wait loop
answers a `<Gather numDigits="1">`, the test posts `Digits` to its action (signed by the `twilio`
package), and what the key means is seen in the call, the customer's hold preference, the last
agent's screen and the queue. The router runs in this process; a whole call back with a real
worker is tests/system/test_twilio_callbacks.py."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from console import services as console_services
from customers import services as customer_services
from customers.models import (
    AccessReason,
    Consent,
    ContextAccess,
    Customer,
    HoldTolerance,
    Provenance,
)
from privacy.services import erase_customer
from routing import agent_status, router
from routing.models import (
    Agent,
    Call,
    Callback,
    CallbackState,
    CallerChoice,
    DecisionReason,
    Offer,
)
from routing.states import AgentStatus, CallState, OfferState
from telephony import callbacks as telephony_callbacks
from telephony import connect
from tests.support.routing import past_call, tasks_published
from tests.support.twilio import (
    ACCOUNT_SID,
    CUSTOMER_NUMBER,
    LOYALTY_NUMBER,
    PUBLIC_BASE_URL,
    new_call_sid,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("twilio_settings")]


@pytest.fixture
def team(make_agent, queue):
    """Dana is on a call; Sam is free. A caller is held a minute for their busy last agent."""
    queue.last_agent_wait_seconds = 60
    queue.hold_averse_wait_seconds = 20
    queue.save()
    dana = make_agent("dana", extension="client:dana", status=AgentStatus.BUSY)
    sam = make_agent("sam", extension="client:sam", status=AgentStatus.AVAILABLE)
    return dana, sam


@pytest.fixture
def maya(make_customer, team, queue) -> Customer:
    customer = make_customer("Maya Chen", phones=[CUSTOMER_NUMBER], consent="open")
    past_call(customer=customer, agent=team[0], queue=queue, days_ago=3)
    return customer


def the_call(call_sid: str) -> Call:
    return Call.objects.get(telephony_call_id=call_sid)


def held_for_dana(twilio, call_sid: str):
    """Maya rings; the router holds her for busy Dana; Twilio asks the wait loop what to play."""
    enqueue = twilio.incoming_call(call_sid).only("Enqueue")
    router.route_call(the_call(call_sid).pk)
    assert the_call(call_sid).last_agent_wait_until is not None
    return enqueue, twilio.wait_round(enqueue, call_sid)


def test_a_held_caller_is_asked_once_by_their_agents_first_name(twilio, maya, sent):
    call_sid = new_call_sid()
    enqueue, asked = held_for_dana(twilio, call_sid)

    assert asked.verbs() == ["Gather", "Pause", "Redirect"]
    gather = asked.root[0]
    assert (gather.get("numDigits"), gather.get("method")) == ("1", "POST")
    assert gather.get("action").endswith("/api/telephony/twilio/choice/")
    prompt = gather.find("Say").text
    assert prompt.startswith("Dana is on another call.")
    assert "press 1" in prompt and "press 2" in prompt and "press 3" in prompt
    assert asked.root[2].text == enqueue.get("waitUrl")

    # No key before the time-out: Twilio goes on to the Redirect; the next round does not ask.
    again = twilio.wait_round(enqueue, call_sid)
    assert "Gather" not in again.verbs()
    assert again.verbs()[-1] == "Redirect"


def test_pressing_1_keeps_the_caller_waiting_records_it_and_tells_the_agent(
    twilio, maya, team, sent
):
    dana, _ = team
    call_sid = new_call_sid()
    _, asked = held_for_dana(twilio, call_sid)
    before = the_call(call_sid).last_agent_wait_until

    answer = twilio.press(asked.root[0], call_sid, "1")

    assert answer.verbs() == ["Say", "Redirect"]
    call = the_call(call_sid)
    assert (call.caller_choice, call.state) == (CallerChoice.WAIT, CallState.QUEUED)
    assert call.last_agent_wait_until >= before
    maya.refresh_from_db()
    assert (maya.hold_tolerance, maya.hold_tolerance_source) == (
        HoldTolerance.FINE,
        Provenance.SAID_ON_KEYPAD,
    )
    assert maya.hold_tolerance_set_at is not None and maya.hold_tolerance_set_by is None
    lines = [m for agent_id, m in sent if agent_id == dana.id and m["type"] == "caller_waiting"]
    assert lines[-1]["chose_to_wait"] is True
    assert lines[-1]["caller_name"] == "Maya Chen"
    # Pressed again (Twilio retried the action): nothing more.
    twilio.press(asked.root[0], call_sid, "1")
    assert Customer.objects.get(pk=maya.pk).hold_tolerance_set_at == maya.hold_tolerance_set_at


def test_a_caller_who_said_they_are_fine_on_hold_is_not_asked_again(twilio, maya):
    first = new_call_sid()
    _, asked = held_for_dana(twilio, first)
    twilio.press(asked.root[0], first, "1")
    twilio.call_status(first, "completed", at=timezone.now())

    second = new_call_sid()
    _, round_two = held_for_dana(twilio, second)

    assert "Gather" not in round_two.verbs()
    assert the_call(second).caller_asked_at is None


def test_pressing_2_sends_the_caller_to_the_next_colleague_at_once(twilio, maya, team):
    dana, sam = team
    call_sid = new_call_sid()
    _, asked = held_for_dana(twilio, call_sid)

    answer = twilio.press(asked.root[0], call_sid, "2")
    assert answer.verbs() == ["Say", "Redirect"]
    router.route_call(the_call(call_sid).pk)

    call = the_call(call_sid)
    assert call.caller_choice == CallerChoice.NEXT_COLLEAGUE
    assert call.last_agent_wait_until is None
    assert call.decisions.filter(reason=DecisionReason.CALLER_CHOSE_NEXT).exists()
    assert Offer.objects.get(call=call, state=OfferState.OFFERED).agent == sam
    maya.refresh_from_db()
    assert (maya.hold_tolerance, maya.hold_tolerance_source) == ("avoid", "keypad")


def test_a_caller_who_avoids_holding_is_offered_only_the_colleague_and_a_call_back(twilio, maya):
    Customer.objects.filter(pk=maya.pk).update(
        hold_tolerance=HoldTolerance.AVOID, hold_tolerance_source=Provenance.INFERRED_BY_AGENT
    )
    call_sid = new_call_sid()

    _, asked = held_for_dana(twilio, call_sid)

    prompt = asked.root[0].find("Say").text
    assert "press 1" not in prompt and "press 2" in prompt and "press 3" in prompt
    # 1 was not offered: as if nothing was pressed.
    assert "Gather" not in twilio.press(asked.root[0], call_sid, "1").verbs()
    assert the_call(call_sid).caller_choice == ""


def test_on_a_shared_line_nobody_is_named_to_the_caller(twilio, make_customer, team, queue):
    """Who is calling is not known: no last agent, no hold, and no agent's name said."""
    for name in ("Maya Chen", "Leo Chen"):
        customer = make_customer(name, phones=[CUSTOMER_NUMBER])
        past_call(customer=customer, agent=team[0], queue=queue, days_ago=3)
    call_sid = new_call_sid()
    enqueue = twilio.incoming_call(call_sid).only("Enqueue")
    router.route_call(the_call(call_sid).pk)

    round_one = twilio.wait_round(enqueue, call_sid)

    assert "Gather" not in round_one.verbs()
    assert "Dana" not in str(round_one.root.itertext())


def test_another_key_or_an_unasked_call_changes_nothing(twilio, maya):
    call_sid = new_call_sid()
    _, asked = held_for_dana(twilio, call_sid)

    assert "Gather" not in twilio.press(asked.root[0], call_sid, "9").verbs()
    assert the_call(call_sid).caller_choice == ""

    never_asked = new_call_sid()
    twilio.incoming_call(never_asked)
    assert "Leave" not in twilio.press(asked.root[0], never_asked, "3").verbs()
    assert the_call(never_asked).state == CallState.QUEUED


def test_pressing_3_ends_the_call_as_a_call_back_that_keeps_the_callers_place(twilio, maya, team):
    dana, _ = team
    call_sid = new_call_sid()
    enqueue, asked = held_for_dana(twilio, call_sid)
    place = the_call(call_sid).queued_at

    assert twilio.press(asked.root[0], call_sid, "3").verbs() == ["Leave"]
    confirmed = twilio.left_queue(enqueue, call_sid, "leave")
    # Out of the wait loop (Record is not allowed there): the message is offered.
    assert confirmed.verbs() == ["Say", "Record", "Hangup"]
    assert "leave a message for Dana if you like, or just hang up" in confirmed.root[0].text
    assert twilio.call_status(call_sid, "completed", at=timezone.now()) == 204

    call = the_call(call_sid)
    assert (call.state, call.end_reason) == (CallState.ENDED, "callback_requested")
    assert call.caller_choice == CallerChoice.CALLBACK
    callback = Callback.objects.get(requested_on=call)
    assert (callback.state, callback.number, callback.from_number, callback.attempts) == (
        CallbackState.WAITING,
        CUSTOMER_NUMBER,
        LOYALTY_NUMBER,
        1,
    )
    assert callback.place == place
    attempt = Call.objects.get(callback=callback)
    assert (attempt.state, attempt.queued_at, attempt.customer) == (CallState.QUEUED, place, maya)


# --- the call back -------------------------------------------------------------------------


def free(agent) -> None:
    """`agent` finished their call: the router offers them the caller that is theirs."""
    agent_status.set_status(
        agent=Agent.objects.get(pk=agent.pk), status=AgentStatus.AVAILABLE, reason="test"
    )
    router.offer_next_call(agent.pk)


def asked_for_a_call_back(twilio, call_sid: str) -> Callback:
    enqueue, asked = held_for_dana(twilio, call_sid)
    twilio.press(asked.root[0], call_sid, "3")
    twilio.left_queue(enqueue, call_sid, "leave")
    twilio.call_status(call_sid, "completed", at=timezone.now())
    callback = Callback.objects.get(requested_on__telephony_call_id=call_sid)
    router.route_call(Call.objects.get(callback=callback).pk)
    return callback


def placed_for(agent, callback: Callback, twilio_api, sent):
    """The try is offered to `agent` as a call back card; they accept; Rapport places it."""
    callback.refresh_from_db()
    attempt = Call.objects.filter(callback=callback).latest("id")
    offer = Offer.objects.get(call=attempt, agent=agent, state=OfferState.OFFERED)
    card = [m for agent_id, m in sent if agent_id == agent.pk and m["type"] == "offer"][-1]
    assert card["callback"] == {
        "id": callback.pk,
        "requested_at": callback.requested_at.isoformat(),
        "attempt": callback.attempts,
        # Twilio places it: the agent dials nothing, and is shown no number to dial.
        "agent_dials": False,
        "number": None,
        "message": None,
    }
    with tasks_published() as published:
        console_services.accept_offer(offer_id=offer.id, agent_id=agent.pk)
    assert published == [(connect.PLACE_CALLBACK, (attempt.pk, offer.decision.pk))]
    assert telephony_callbacks.place_callback(call_pk=attempt.pk, decision_pk=None) is None
    created = twilio_api.received[-1]
    assert created.path == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Calls.json"
    return created


def test_a_call_back_goes_to_the_last_agent_first_and_is_placed_at_twilio_on_accept(
    twilio, twilio_api, maya, team, sent
):
    dana, sam = team
    callback = asked_for_a_call_back(twilio, new_call_sid())
    # Dana is still busy: the call back waits for her, as a call would; Sam is not offered it.
    attempt = Call.objects.get(callback=callback)
    assert attempt.last_agent_wait_until is not None
    assert not Offer.objects.filter(call=attempt).exists()

    free(dana)
    created = placed_for(dana, callback, twilio_api, sent)

    assert created.form["To"] == [CUSTOMER_NUMBER]
    assert created.form["From"] == [LOYALTY_NUMBER]
    assert created.form["StatusCallback"] == [f"{PUBLIC_BASE_URL}/api/telephony/twilio/status/"]
    dial = created.twiml[0]
    assert (dial.tag, dial[0].tag, dial[0].text) == ("Dial", "Client", "dana")
    assert Callback.objects.get(pk=callback.pk).state == CallbackState.DIALLING
    placed_sid = created.sid
    assert Call.objects.get(pk=attempt.pk).telephony_call_id == placed_sid

    # Maya answers, Dana's leg answers: the try is Dana's call; when it ends she was reached.
    leg_sid = new_call_sid()
    assert twilio.agent_leg(dial[0], placed_sid, leg_sid, "in-progress", at=timezone.now()) == 204
    assert Call.objects.get(pk=attempt.pk).state == CallState.CONNECTED
    assert twilio.call_status(placed_sid, "completed", at=timezone.now()) == 204

    callback.refresh_from_db()
    assert (callback.state, callback.attempts) == (CallbackState.REACHED, 1)
    assert Call.objects.get(pk=attempt.pk).agent == dana


def test_a_call_back_not_answered_is_tried_again_then_listed_as_not_reached(
    twilio, twilio_api, maya, team, queue, sent
):
    dana, _ = team
    queue.callback_attempts = 2
    queue.callback_retry_seconds = 600
    queue.save()
    callback = asked_for_a_call_back(twilio, new_call_sid())
    free(dana)

    for attempt_number in (1, 2):
        created = placed_for(dana, callback, twilio_api, sent)
        assert twilio.call_status(created.sid, "no-answer", at=timezone.now()) == 204
        placed = Call.objects.get(telephony_call_id=created.sid)
        assert (placed.state, placed.end_reason) == (CallState.ENDED, "no-answer")
        callback.refresh_from_db()
        assert callback.attempts == attempt_number
        if attempt_number == 1:
            assert callback.state == CallbackState.WAITING
            assert callback.next_attempt_at > timezone.now()
            # Not before the queue's wait: the sweep leaves it; once due, a second try queues.
            router.sweep()
            assert Call.objects.filter(callback=callback).count() == 1
            Callback.objects.filter(pk=callback.pk).update(next_attempt_at=timezone.now())
            assert router.sweep()["callbacks_retried"] == 1
            again = Call.objects.filter(callback=callback).latest("id")
            assert (again.state, again.queued_at) == (CallState.QUEUED, callback.place)
            router.route_call(again.pk)
            if not Offer.objects.filter(call=again, state=OfferState.OFFERED).exists():
                router.offer_next_call(dana.pk)

    assert (callback.state, callback.finished_at is not None) == (CallbackState.NOT_REACHED, True)
    assert Agent.objects.get(pk=dana.pk).status == AgentStatus.AVAILABLE


def test_a_caller_who_rings_again_while_their_call_back_waits_is_matched_to_it(twilio, maya, team):
    callback = asked_for_a_call_back(twilio, new_call_sid())
    waiting_try = Call.objects.get(callback=callback)

    again_sid = new_call_sid()
    twilio.incoming_call(again_sid)

    again = the_call(again_sid)
    assert again.queued_at == callback.place
    callback.refresh_from_db()
    assert callback.state == CallbackState.MATCHED
    waiting_try.refresh_from_db()
    assert (waiting_try.state, waiting_try.end_reason) == (CallState.ENDED, "caller_rang_again")
    assert Callback.objects.count() == 1


def test_asking_twice_while_a_call_back_waits_makes_one_call_back(twilio, maya, team):
    """Pressed 3 on two calls at once (two phones, one number): one call back, not two."""
    first = asked_for_a_call_back(twilio, new_call_sid())
    Callback.objects.filter(pk=first.pk).update(state=CallbackState.DIALLING)
    second_sid = new_call_sid()
    enqueue, asked = held_for_dana(twilio, second_sid)
    twilio.press(asked.root[0], second_sid, "3")

    assert Callback.objects.count() == 1
    assert the_call(second_sid).end_reason == "callback_requested"


def test_a_closed_consent_callers_call_back_card_shows_what_the_call_needs_and_audits_it(
    twilio, twilio_api, maya, team, sent
):
    dana, _ = team
    Customer.objects.filter(pk=maya.pk).update(consent=Consent.CLOSED)
    customer_services.add_note(customer=maya, author=dana.user, text="Buying for her new baby")
    customer_services.add_note(
        customer=maya, author=dana.user, text="Return pending", open_matter=True
    )
    callback = asked_for_a_call_back(twilio, new_call_sid())
    attempt = Call.objects.get(callback=callback)

    free(dana)

    card = [m for agent_id, m in sent if agent_id == dana.pk and m["type"] == "offer"][-1]
    assert card["call_id"] == attempt.telephony_call_id and card["callback"]["id"] == callback.pk
    shown = card["caller"]["customer"]
    assert shown["history_hidden"] is True
    assert [note["text"] for note in shown["notes"]] == ["Return pending"]
    assert ContextAccess.objects.filter(
        customer=maya, user=dana.user, call_id=attempt.pk, reason=AccessReason.OFFER
    ).exists()


def test_erasing_the_customer_removes_their_call_backs_and_takes_a_waiting_try_off_the_queue(
    twilio, maya, team
):
    callback = asked_for_a_call_back(twilio, new_call_sid())
    waiting_try = Call.objects.get(callback=callback)
    staff = User.objects.create_user("privacy-officer", is_staff=True)

    erase_customer(customer=maya, erased_by=staff)

    assert not Callback.objects.exists()
    waiting_try.refresh_from_db()
    assert (waiting_try.state, waiting_try.end_reason) == (CallState.ENDED, "erased")
    assert (waiting_try.from_e164, waiting_try.callback_id) == ("", None)
