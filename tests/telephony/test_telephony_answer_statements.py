"""`call.answered` and `call.ended` in few statements (issue 14): the call's ringing offers
closed with what the answer needs to know in one statement, the agents locked in one, the
agent's status and its history row in one. Through the signed webhook, on real PostgreSQL."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from customers.models import AccessReason, ContextAccess
from routing import offers, router
from routing.models import Agent, AgentStatusChange, Call, DecisionReason, Offer, RoutingDecision
from routing.states import AgentStatus
from tests.support.telephony import event, ringing

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("webhook_secret")]


def _statements(phone_system, payload) -> list[str]:
    with CaptureQueriesContext(connection) as captured:
        response = phone_system.post(payload)
    assert response.status_code == 202, response.content
    return [" ".join(query["sql"].split()) for query in captured.captured_queries]


def available(agent):
    """The agent goes available once the call rang (so it was not offered to them)."""
    Agent.objects.filter(id=agent.id).update(status=AgentStatus.AVAILABLE)
    agent.refresh_from_db()
    return agent


def test_an_answer_and_a_hang_up_take_few_statements(phone_system, client, queue, make_agent):
    # Nobody is free when the call rings: the telephony system connects it without an offer.
    dana = make_agent("dana", extension="2001", status=AgentStatus.OFFLINE)
    phone_system.post(ringing("CA1", **{"from": "+14155550999"}))
    dana = available(dana)

    answered = _statements(phone_system, event("call.answered", "CA1", agent="2001"))
    ended = _statements(phone_system, event("call.ended", "CA1", reason="completed"))

    # The recorded event read; BEGIN, the call's upsert, the agent named, the event marked
    # applied with the call's update; the call's ringing offers closed (with who had accepted,
    # and the caller's candidates), the agents locked, the decision "answered by the telephony
    # system", the agent's status with its history row, the offers ringing for the agent
    # elsewhere; COMMIT.
    assert len(answered) == 11, "\n".join(answered)
    # The recorded event read; BEGIN, upsert, event marked applied; offers closed (with the
    # candidates), the agent locked, wrap-up with its history row unless another call is in
    # hand; COMMIT.
    assert len(ended) == 8, "\n".join(ended)
    history = list(
        AgentStatusChange.objects.filter(agent=dana)
        .order_by("id")
        .values_list("previous_status", "status", "reason", "not_ready_reason")
    )
    assert history == [
        ("available", "busy", "call_answered", ""),
        ("busy", "wrap_up", "call_ended", ""),
    ]
    dana.refresh_from_db()
    assert dana.status == AgentStatus.WRAP_UP


def test_a_known_caller_answered_and_ended_is_audited_each_time(
    phone_system, queue, make_agent, make_customer
):
    dana = make_agent("dana", extension="2001", status=AgentStatus.OFFLINE)
    maya = make_customer("Maya Chen", consent="open")
    phone_system.post(ringing("CA1"))
    available(dana)

    phone_system.post(event("call.answered", "CA1", agent="2001"))
    phone_system.post(event("call.ended", "CA1", reason="completed"))

    call = Call.objects.get()
    assert call.customer_id == maya.id
    looks = list(
        ContextAccess.objects.filter(call_id=call.id)
        .order_by("id")
        .values_list("customer_id", "user_id", "reason")
    )
    assert looks == [
        (maya.id, dana.user_id, AccessReason.CALL),
        (maya.id, dana.user_id, AccessReason.CALL),
    ]


def test_candidates_of_a_shared_number_are_audited_in_name_order(
    phone_system, queue, make_agent, make_customer
):
    dana = make_agent("dana", extension="2001", status=AgentStatus.OFFLINE)
    zoe = make_customer("Zoe Park", consent="open")
    ann = make_customer("Ann Lee", consent="open")
    phone_system.post(ringing("CA1"))
    available(dana)

    phone_system.post(event("call.answered", "CA1", agent="2001"))

    call = Call.objects.get()
    assert call.customer_id is None
    looks = list(
        ContextAccess.objects.filter(call_id=call.id)
        .order_by("id")
        .values_list("customer_id", "user_id")
    )
    assert looks == [(ann.id, dana.user_id), (zoe.id, dana.user_id)]


def test_an_agent_who_accepted_is_freed_when_another_is_connected(phone_system, queue, make_agent):
    dana = make_agent("dana", extension="2001", status=AgentStatus.AVAILABLE)
    omar = make_agent("omar", extension="2002", status=AgentStatus.OFFLINE)
    phone_system.post(ringing("CA1"))
    call = Call.objects.get()
    router.route_call(call.id)
    offer = Offer.objects.get(call=call)
    assert offer.agent_id == dana.id
    offers.accept_offer(offer_id=offer.id, agent_id=dana.id)

    phone_system.post(event("call.answered", "CA1", agent="2002"))

    dana.refresh_from_db()
    omar.refresh_from_db()
    assert (dana.status, omar.status) == (AgentStatus.AVAILABLE, AgentStatus.BUSY)
    assert AgentStatusChange.objects.filter(agent=dana).latest("id").reason == (
        "answered_elsewhere"
    )
    assert AgentStatusChange.objects.filter(agent=omar).latest("id").reason == "call_answered"
    reasons = list(RoutingDecision.objects.filter(call=call).values_list("reason", "agent_id"))
    assert reasons[-1] == (DecisionReason.TELEPHONY_ANSWERED, omar.id)


def test_an_agent_stays_busy_when_one_of_their_two_calls_ends(phone_system, queue, make_agent):
    dana = make_agent("dana", extension="2001", status=AgentStatus.AVAILABLE)
    for call_id, number in (("CA1", "+14155550901"), ("CA2", "+14155550902")):
        phone_system.post(ringing(call_id, **{"from": number}))
        phone_system.post(event("call.answered", call_id, agent="2001"))

    phone_system.post(event("call.ended", "CA1", reason="completed"))

    dana.refresh_from_db()
    assert dana.status == AgentStatus.BUSY
    assert not AgentStatusChange.objects.filter(agent=dana, status=AgentStatus.WRAP_UP).exists()

    phone_system.post(event("call.ended", "CA2", reason="completed"))

    dana.refresh_from_db()
    assert dana.status == AgentStatus.WRAP_UP
