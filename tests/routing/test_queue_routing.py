"""The queue without workers: the router's functions called directly, as a redelivered task
would call them. A task delivered twice offers once, the card names the last agent the router
used, an offer records the screen-pop, and a long history costs no more queries.
tests/system/test_queue_routing.py routes with real Celery workers."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from customers.models import ContextAccess
from routing import messages, router
from routing.models import Agent, Call, Offer, RoutingDecision
from routing.states import AgentStatus, CallState
from tests.support.routing import arrive, past_call

pytestmark = pytest.mark.usefixtures("fast_logins")


@pytest.mark.django_db
def test_a_route_task_delivered_twice_offers_once(make_agent, queue):
    make_agent("dana", status="available")
    call = arrive(queue=queue, publish=False)

    router.route_call(call.id)
    router.route_call(call.id)

    assert Offer.objects.filter(call=call).count() == 1
    assert RoutingDecision.objects.filter(call=call).count() == 1


@pytest.mark.django_db
def test_an_agent_task_delivered_twice_offers_once(make_agent, queue):
    dana = make_agent("dana", status="available")
    for n in range(2):
        call = arrive(queue=queue, number=f"+1415555010{n}", publish=False)
        Agent.objects.filter(id=dana.id).update(status=AgentStatus.BREAK)
        router.route_call(call.id)
    Agent.objects.filter(id=dana.id).update(status=AgentStatus.AVAILABLE)

    router.offer_next_call(dana.id)
    router.offer_next_call(dana.id)

    assert Offer.objects.filter(agent=dana).count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize(("lookback_days", "last_agent"), [(180, None), (365, "sam")])
def test_the_card_names_the_last_agent_the_router_used(
    make_agent, make_customer, queue, lookback_days, last_agent
):
    queue.last_agent_lookback_days = lookback_days
    queue.save()
    dana = make_agent("dana", status="available")
    sam = make_agent("sam", status="break")
    maya = make_customer("Maya Chen", consent="open")
    past_call(customer=maya, agent=sam, queue=queue, days_ago=200)
    call = arrive(queue=queue, customer=maya, publish=False)

    router.route_call(call.id)

    call.refresh_from_db()
    card = messages.caller_for_call(call)["customer"]["last_agent"]
    assert (call.last_agent.user.username if call.last_agent else None) == last_agent
    assert (card["id"] if card else None) == (sam.id if last_agent else None)
    assert call.offers.get().agent == dana


@pytest.mark.django_db
def test_an_offer_records_the_screen_pop_in_the_access_log(make_agent, make_customer, queue):
    dana = make_agent("dana", status="available")
    maya = make_customer("Maya Chen", consent="open")
    call = arrive(queue=queue, customer=maya, publish=False)

    router.route_call(call.id)

    access = ContextAccess.objects.get()
    assert (access.customer_id, access.user_id, access.call_id) == (maya.id, dana.user_id, call.id)


def _queries_to_offer(call: Call) -> int:
    with CaptureQueriesContext(connection) as queries:
        router.route_call(call.id)
    return len(queries)


@pytest.mark.django_db
def test_reading_history_costs_the_same_for_10000_previous_calls_as_for_one(
    make_agent, make_customer, queue, django_assert_max_num_queries
):
    dana = make_agent("dana", status="available")
    sam = make_agent("sam", status="available")
    newcomer = make_customer("Nia Obi", phones=["+14155550001"], consent="open")
    regular = make_customer("Maya Chen", phones=["+14155550002"], consent="open")
    past_call(customer=newcomer, agent=dana, queue=queue)
    moment = timezone.now() - timedelta(days=3)
    Call.objects.bulk_create(
        Call(
            telephony_call_id=f"HIST{n}",
            queue=queue,
            customer=regular,
            agent=sam,
            state=CallState.ENDED,
            connected_at=moment - timedelta(minutes=n),
        )
        for n in range(10_000)
    )
    first_call = arrive(queue=queue, customer=newcomer, number="+14155550001", publish=False)
    regular_call = arrive(queue=queue, customer=regular, number="+14155550002", publish=False)

    one = _queries_to_offer(first_call)
    with django_assert_max_num_queries(one):
        router.route_call(regular_call.id)

    assert one <= 20
    assert Offer.objects.get(call=first_call).agent == dana
    assert Offer.objects.get(call=regular_call).agent == sam
