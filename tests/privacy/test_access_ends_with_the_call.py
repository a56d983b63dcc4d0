"""A customer's record is open to an agent while the call is theirs, and closes when it stops
being theirs (issue 26, points 6 and 8): an offer they accepted counts only while the call is
still with them, not after it was handed to a colleague, answered at another agent's phone, or
sent back to the queue when their phone missed it; and saying who is on a shared line is for a
call ringing for or live with them, not one from last month.

Everything goes the way production takes it: the phone system's events signed and applied by
the worker's task, Twilio's requests signed by the `twilio` package, the agent's requests with
her session through the ASGI application."""

from __future__ import annotations

import pytest

from customers.models import CallNote, ContextAccess, Customer
from routing import router, transfers
from routing.models import Agent, Call, Offer
from routing.states import AgentStatus, CallState, OfferState
from telephony.twilio import calls as twilio_calls
from tests.support.people import Person, request_connections_closed  # noqa: F401 (fixture)
from tests.support.routing import past_call, tasks_published
from tests.support.telephony import at, event, ringing, send
from tests.support.twilio import new_call_sid

pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.usefixtures("fast_logins", "request_connections_closed"),
]

NUMBER = "+14155550123"


@pytest.fixture
def maya(make_customer) -> Customer:
    return make_customer("Maya Chen", phones=[NUMBER], consent="open")


def accepts_the_offer(person: Person, call: Call) -> Offer:
    offer = Offer.objects.get(call=call, agent__user=person.user, state=OfferState.OFFERED)
    accepted = person.post(f"/api/offers/{offer.id}/accept/")
    assert accepted.status_code == 200, accepted.text
    return offer


def everything_she_tries(person: Person, customer: Customer, call: Call) -> dict[str, int]:
    """Each way an agent reaches a customer without typing a reason, and what it answered."""
    path = f"/api/customers/{customer.id}/"
    return {
        "read": person.get(path).status_code,
        "read notes": person.get(path + "notes/").status_code,
        "change consent and name": person.patch(
            path, {"consent": "closed", "name": "Someone Else"}
        ).status_code,
        "leave a note": person.post(path + "notes/", {"text": "after it was gone"}).status_code,
        "read the call": person.get(f"/api/calls/{call.telephony_call_id}/").status_code,
    }


REFUSED = {
    "read": 403,
    "read notes": 403,
    "change consent and name": 403,
    "leave a note": 403,
    "read the call": 403,
}


def assert_closed_to(person: Person, customer: Customer, call: Call) -> None:
    """Nothing without a typed reason, nothing written or logged; with a typed reason she may
    read (audited with it), never change."""
    logged_before = ContextAccess.objects.count()

    assert everything_she_tries(person, customer, call) == REFUSED

    unchanged = Customer.objects.get(id=customer.id)
    assert (unchanged.name, unchanged.consent) == ("Maya Chen", "open")
    assert not CallNote.objects.filter(customer=customer).exists()
    assert ContextAccess.objects.count() == logged_before

    typed = {"reason": "she emailed about her refund"}
    path = f"/api/customers/{customer.id}/"
    assert person.get(path, typed).status_code == 200
    assert person.patch(path, {"consent": "closed"}, typed).status_code == 403
    noted = person.request("POST", path + "notes/", json={"text": "x"}, params=typed)
    assert noted.status_code == 403
    looked_up = ContextAccess.objects.order_by("id")[logged_before:]
    assert [(row.user_id, row.reason, row.reason_text, row.call_id) for row in looked_up] == [
        (person.user.id, "lookup", typed["reason"], None)
    ]
    assert not CallNote.objects.filter(customer=customer).exists()


# --- 6. an accepted offer counts only while the call is still hers --------------------------


@pytest.mark.django_db(transaction=True)
def test_after_a_transfer_away_the_customer_closes_when_her_wrap_up_ends(
    phone_system, queue, make_agent, maya
):
    dana = make_agent("dana", extension="1001", status="available")
    make_agent("lee", extension="1002", status="offline")
    person = Person(dana.user)
    send(phone_system, ringing("CA-T", at(0), **{"from": NUMBER}))
    call = Call.objects.get(telephony_call_id="CA-T")
    accepts_the_offer(person, call)
    send(
        phone_system,
        event("call.answered", "CA-T", at(5), agent="1001"),
        event("call.transferred", "CA-T", at(60), agent="1002"),
    )
    # Her part is over; her wrap-up of it still shows her the caller, for her note.
    assert Agent.objects.get(id=dana.id).status == AgentStatus.WRAP_UP
    assert person.get(f"/api/customers/{maya.id}/").status_code == 200

    assert person.post(f"/api/agents/{dana.id}/ready/").status_code == 200

    # The call goes on with Lee; nothing of it is Dana's any more.
    assert Call.objects.get(id=call.id).state == CallState.TRANSFERRED
    assert_closed_to(person, maya, call)


@pytest.mark.django_db(transaction=True)
def test_when_the_phone_system_answers_the_call_at_another_agent_it_closes_at_once(
    phone_system, queue, make_agent, maya
):
    dana = make_agent("dana", extension="1001", status="available")
    make_agent("lee", extension="1002", status="offline")
    person = Person(dana.user)
    send(phone_system, ringing("CA-E", at(0), **{"from": NUMBER}))
    call = Call.objects.get(telephony_call_id="CA-E")
    accepts_the_offer(person, call)
    assert person.get(f"/api/customers/{maya.id}/").status_code == 200

    send(phone_system, event("call.answered", "CA-E", at(5), agent="1002"))

    assert Call.objects.get(id=call.id).state == CallState.CONNECTED
    assert Agent.objects.get(id=dana.id).status == AgentStatus.AVAILABLE
    assert_closed_to(person, maya, call)


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("twilio_settings")
def test_when_twilio_could_not_reach_her_phone_it_closes_as_the_caller_goes_back_to_the_queue(
    twilio, twilio_api, queue, make_agent, maya
):
    dana = make_agent("dana", extension="client:dana", status="available")
    person = Person(dana.user)
    call_sid = new_call_sid()
    twilio.incoming_call(call_sid, from_number=NUMBER)
    call = Call.objects.get(telephony_call_id=call_sid)
    router.route_call(call.id)
    with tasks_published() as published:
        offer = accepts_the_offer(person, call)
    assert published == [("telephony.twilio_dial_agent", (call.id, offer.decision.pk))]
    # The worker's task: Twilio is told to dial her.
    assert twilio_calls.dial_agent_by_rest_update(call_pk=call.id, decision_pk=None) is None
    dial = twilio_api.received[-1].twiml[0]

    assert twilio.dial_ended(dial, call_sid, "no-answer").only("Enqueue") is not None

    call.refresh_from_db()
    assert (call.state, call.agent_id) == (CallState.QUEUED, None)
    assert Offer.objects.get(id=offer.id).state == OfferState.ACCEPTED
    assert_closed_to(person, maya, call)


# --- 8. saying who is calling: only on a call ringing for or live with her -------------------

SHARED = "+14155550142"


@pytest.mark.django_db(transaction=True)
def test_an_agent_cannot_say_who_was_on_a_call_from_last_month(queue, make_agent, make_customer):
    dana = make_agent("dana", status="available")
    maya = make_customer("Maya Chen", phones=[SHARED], consent="open")
    leo = make_customer("Leo Chen", phones=[SHARED], consent="open")
    old = past_call(customer=maya, agent=dana, queue=queue, days_ago=30)
    Call.objects.filter(id=old.id).update(from_e164=SHARED)
    person = Person(dana.user)

    refused = person.post(f"/api/calls/{old.telephony_call_id}/caller/", {"customer_id": leo.id})

    assert refused.status_code == 403, refused.text
    assert "not ringing for you or with you" in refused.json()["detail"]
    assert "Leo" not in refused.text
    assert Call.objects.get(id=old.id).customer_id == maya.id
    assert not ContextAccess.objects.filter(customer=leo).exists()


@pytest.mark.django_db(transaction=True)
def test_an_agent_says_who_is_calling_while_the_call_is_live_with_her_and_in_its_wrap_up(
    phone_system, queue, make_agent, make_customer
):
    dana = make_agent("dana", extension="1001", status="available")
    maya = make_customer("Maya Chen", phones=[SHARED], consent="open")
    leo = make_customer("Leo Chen", phones=[SHARED], consent="open")
    person = Person(dana.user)
    send(
        phone_system,
        ringing("CA-S", at(0), **{"from": SHARED}),
        event("call.answered", "CA-S", at(5), agent="1001"),
    )
    choose = "/api/calls/CA-S/caller/"

    live = person.post(choose, {"customer_id": leo.id})
    send(phone_system, event("call.ended", "CA-S", at(60), reason="completed"))
    in_wrap_up = person.post(choose, {"customer_id": maya.id})
    assert person.post(f"/api/agents/{dana.id}/ready/").status_code == 200
    afterwards = person.post(choose, {"customer_id": leo.id})

    assert (live.status_code, in_wrap_up.status_code, afterwards.status_code) == (200, 200, 403)
    assert live.json()["caller"]["customer"]["name"] == "Leo Chen"
    assert Call.objects.get(telephony_call_id="CA-S").customer_id == maya.id


@pytest.mark.django_db(transaction=True)
def test_after_handing_the_call_on_she_no_longer_says_who_is_on_it(
    phone_system, queue, make_agent, make_customer
):
    """Her wrap-up shows her the caller, but the call is Lee's now: who is on it is his to say."""
    dana = make_agent("dana", extension="1001", status="available")
    make_agent("lee", extension="1002", status="offline")
    make_customer("Maya Chen", phones=[SHARED], consent="open")
    leo = make_customer("Leo Chen", phones=[SHARED], consent="open")
    person = Person(dana.user)
    send(
        phone_system,
        ringing("CA-H", at(0), **{"from": SHARED}),
        event("call.answered", "CA-H", at(5), agent="1001"),
        event("call.transferred", "CA-H", at(60), agent="1002"),
    )
    assert Agent.objects.get(id=dana.id).status == AgentStatus.WRAP_UP

    refused = person.post("/api/calls/CA-H/caller/", {"customer_id": leo.id})

    assert refused.status_code == 403, refused.text
    assert Call.objects.get(telephony_call_id="CA-H").customer_id is None


# --- a hand-off from the console ---------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_hand_off_opens_the_customer_to_the_colleague_while_it_rings_and_once_he_accepted(
    phone_system, queue, make_agent, maya
):
    dana = make_agent("dana", extension="1001", status="available")
    lee = make_agent("lee", extension="1002", status="offline")
    kim = make_agent("kim", extension="1003", status="offline")
    send(phone_system, ringing("CA-H", at(0), **{"from": NUMBER}))
    call = Call.objects.get(telephony_call_id="CA-H")
    accepts_the_offer(Person(dana.user), call)
    send(phone_system, event("call.answered", "CA-H", at(5), agent="1001"))
    Agent.objects.filter(id__in=[lee.id, kim.id]).update(status=AgentStatus.AVAILABLE)
    lee_person, kim_person = Person(lee.user), Person(kim.user)

    # Kim's hand-off is declined: closed to him at once.
    offer = transfers.request_transfer(
        agent_id=dana.id, telephony_call_id="CA-H", to_agent_id=kim.id, note="size 9 too small"
    )
    assert kim_person.get(f"/api/customers/{maya.id}/").status_code == 200
    assert kim_person.post(f"/api/offers/{offer.id}/decline/").status_code == 200
    assert kim_person.get(f"/api/customers/{maya.id}/").status_code == 403

    # Lee accepts his: open while the phone system moves the caller, and after.
    offer = transfers.request_transfer(
        agent_id=dana.id, telephony_call_id="CA-H", to_agent_id=lee.id, note="size 9 too small"
    )
    assert lee_person.post(f"/api/offers/{offer.id}/accept/").status_code == 200
    assert lee_person.get(f"/api/customers/{maya.id}/").status_code == 200
    send(phone_system, event("call.transferred", "CA-H", at(60), agent="1002"))
    assert lee_person.get(f"/api/customers/{maya.id}/").status_code == 200
    assert Agent.objects.get(id=dana.id).status == AgentStatus.WRAP_UP
