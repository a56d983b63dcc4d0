"""The router's offer in few statements (issue 14): the call, its queue and customer in one
locking read that the caller card reuses; the offer, the call moved, the decision and the
audit row of the card's look in one statement; the hottest statements prepared on the server.
Through `route_call` on real PostgreSQL; the messages that would go to the agent's socket are
captured."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from customers.models import ContextAccess, Customer, HoldTolerance, Pace, Provenance
from routing import offers as routing_offers
from routing import router
from routing.models import Call, Offer, RoutingDecision
from routing.states import AgentStatus, CallState, OfferState
from tests.support.routing import arrive, past_call, prepared_statements

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]


def offers(sent) -> list[dict]:
    return [message for _agent_id, message in sent if message["type"] == "offer"]


def test_the_card_comes_from_the_routers_read_with_who_recorded_a_preference(
    make_agent, make_customer, queue, sent
):
    dana = make_agent("dana", status=AgentStatus.AVAILABLE)
    maya = make_customer(
        "Maya Chen",
        consent="open",
        pace=Pace.BRISK,
        pace_source=Provenance.SAID_BY_CALLER,
        pace_set_by=dana.user,
        pace_set_at=timezone.now(),
    )
    past_call(customer=maya, agent=dana, queue=queue)
    call = arrive(queue=queue, customer=maya, publish=False)

    with CaptureQueriesContext(connection) as queries:
        router.route_call(call.id)

    (offer,) = offers(sent)
    card = offer["caller"]["customer"]
    assert card["name"] == "Maya Chen"
    assert card["preferences"]["pace"]["value"] == "brisk"
    assert card["preferences"]["pace"]["set_by"] == "Dana"
    assert card["last_agent"]["id"] == dana.id
    customer_reads = [
        q["sql"] for q in queries.captured_queries if "customers_customer" in q["sql"]
    ]
    assert len(customer_reads) == 1, customer_reads
    assert "FOR UPDATE" in customer_reads[0]
    last_agent_reads = [
        q["sql"] for q in queries.captured_queries if "connected_at DESC" in q["sql"]
    ]
    # Read once, in the statement that locks the call (no round trip of its own).
    assert last_agent_reads == customer_reads
    assert ContextAccess.objects.filter(customer=maya, call_id=call.id, reason="offer").count() == 1


def test_a_customer_erased_before_the_offer_is_not_on_the_card(
    make_agent, make_customer, queue, sent
):
    make_agent("dana", status=AgentStatus.AVAILABLE)
    maya = make_customer("Maya Chen", consent="open")
    call = arrive(queue=queue, customer=maya, publish=False)
    Customer.objects.filter(id=maya.id).update(erased_at=timezone.now())

    router.route_call(call.id)

    (offer,) = offers(sent)
    assert offer["caller"]["kind"] == "unknown"
    assert offer["caller"]["customer"] is None


def test_an_offer_refused_by_the_constraint_leaves_no_decision_and_the_call_waiting(
    make_agent, queue, sent
):
    dana = make_agent("dana", status=AgentStatus.AVAILABLE)
    ringing = arrive(queue=queue, publish=False)
    router.route_call(ringing.id)
    assert Offer.objects.get(call=ringing).agent == dana
    call = arrive(queue=queue, publish=False)
    locked = Call.objects.select_related("queue").get(id=call.id)

    assert routing_offers.make_offer(call=locked, agent=dana, reason="longest_idle") is None

    call.refresh_from_db()
    assert call.state == CallState.QUEUED
    assert not RoutingDecision.objects.filter(call=call).exists()
    assert Offer.objects.filter(agent=dana, state=OfferState.OFFERED).count() == 1


def test_the_offers_statement_writes_offer_call_decision_and_the_look_together(
    make_agent, make_customer, queue, sent
):
    dana = make_agent("dana", status=AgentStatus.AVAILABLE)
    maya = make_customer("Maya Chen")
    call = arrive(queue=queue, customer=maya, publish=False)

    with CaptureQueriesContext(connection) as queries:
        router.route_call(call.id)

    (offer_statement,) = [
        q["sql"] for q in queries.captured_queries if "routing_offer (" in q["sql"]
    ]
    # The screen-pop's audit row goes in with the offer that shows the card: no round trip of
    # its own.
    assert [
        q["sql"] for q in queries.captured_queries if "customers_contextaccess" in q["sql"]
    ] == [offer_statement]
    (access,) = ContextAccess.objects.filter(call_id=call.id)
    assert (access.customer_id, access.user_id, access.reason) == (maya.id, dana.user_id, "offer")
    assert (access.username, access.reason_text) == (dana.user.username, "")
    call.refresh_from_db()
    offer = Offer.objects.get(call=call)
    decision = RoutingDecision.objects.get(call=call)
    assert (call.state, call.state_changed_at) == (CallState.OFFERED, offer.offered_at)
    assert (offer.agent, offer.state) == (dana, OfferState.OFFERED)
    assert (decision.offer, decision.agent_id, decision.reason) == (offer, dana.id, "longest_idle")
    assert decision.decided_at == offer.offered_at
    assert decision.took_ms is not None and decision.caller_waited_ms is not None
    assert decision.detail == {}


def test_the_routers_statements_are_prepared_on_the_server(make_agent, queue, sent):
    for n in range(8):
        make_agent(f"agent{n}", status=AgentStatus.AVAILABLE)
    for _ in range(8):
        router.route_call(arrive(queue=queue, publish=False).id)

    prepared = " ".join(prepared_statements())
    assert "FOR UPDATE OF agent SKIP LOCKED" in prepared
    assert "FOR UPDATE OF call" in prepared
    assert "INSERT INTO routing_offer" in prepared


def test_a_first_routing_tells_the_card_its_hold_story_from_the_decisions_it_made(
    make_agent, make_customer, queue, sent
):
    queue.last_agent_wait_seconds = 30
    queue.hold_averse_wait_seconds = 0
    queue.save()
    dana = make_agent("dana", status=AgentStatus.BUSY)
    sam = make_agent("sam", status=AgentStatus.AVAILABLE)
    averse = make_customer(
        "Maya Chen",
        consent="open",
        hold_tolerance=HoldTolerance.AVOID,
        hold_tolerance_source=Provenance.SAID_BY_CALLER,
    )
    past_call(customer=averse, agent=dana, queue=queue)
    regular = make_customer("Leo Park", phones=["+14155550777"], consent="open")
    call = arrive(queue=queue, customer=averse, publish=False)

    router.route_call(call.id)

    (offer,) = offers(sent)
    assert offer["hold_rule"]["rule"] == "avoids_holding"
    assert offer["hold_rule"]["held"] is False
    assert offer["hold_rule"]["text"] == "Sent straight to the queue — avoids holding"

    sent.clear()
    Offer.objects.filter(call=call).update(state=OfferState.WITHDRAWN)
    past_call(customer=regular, agent=sam, queue=queue)
    second = arrive(queue=queue, customer=regular, number="+14155550777", publish=False)
    with CaptureQueriesContext(connection) as queries:
        router.route_call(second.id)

    (offer,) = offers(sent)
    assert offer["reason"] == "last_agent" and offer["hold_rule"] is None
    decision_reads = [
        q["sql"]
        for q in queries.captured_queries
        if '"routing_routingdecision"."reason"' in q["sql"]
    ]
    assert decision_reads == []
