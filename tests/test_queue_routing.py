"""The queue: longest-idle agent first; with nobody free, callers wait and are offered in order
of arrival, except that a freed agent first gets a waiting caller whose last agent they are."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from customers.models import ContextAccess
from routing import agent_status, messages, offers, router, status_choices
from routing.models import Agent, Call, Offer, RoutingDecision
from routing.states import AgentStatus, CallState, OfferState
from tests.support.routing import (
    FAST_PASSWORD_HASHERS,
    arrive,
    past_call,
    running_workers,
    wait_until,
)


@pytest.fixture(autouse=True)
def fast_logins(settings):
    settings.PASSWORD_HASHERS = FAST_PASSWORD_HASHERS


@pytest.fixture(scope="module")
def workers(django_db_setup, django_db_blocker, tmp_path_factory):
    with running_workers(tmp_path_factory.mktemp("beat"), concurrency=2) as running:
        yield running


def idle_since(agent: Agent, seconds_ago: int) -> None:
    Agent.objects.filter(id=agent.id).update(
        status_changed_at=timezone.now() - timedelta(seconds=seconds_ago)
    )


def open_offer(call: Call) -> Offer | None:
    return Offer.objects.filter(call=call, state=OfferState.OFFERED).first()


def reasons(call: Call) -> list[str]:
    return list(call.decisions.order_by("id").values_list("reason", flat=True))


def finish_offer(offer: Offer) -> None:
    """The agent takes the call and the caller hangs up; the agent stays busy until the test
    moves them on."""
    offers.accept_offer(offer_id=offer.id, agent_id=offer.agent_id)
    Call.objects.filter(id=offer.call_id).update(state=CallState.ENDED, ended_at=timezone.now())


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_it_offers_a_new_caller_to_the_agent_idle_longest(workers, make_agent, queue):
    recent = make_agent("recent", status="available")
    longest = make_agent("longest", status="available")
    idle_since(recent, 10)
    idle_since(longest, 600)

    call = arrive(queue=queue, number="+14155550999")
    offer = wait_until(lambda: open_offer(call))

    assert offer.agent == longest
    assert reasons(call) == ["longest_idle"]


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_with_nobody_free_callers_wait_and_are_offered_in_order_of_arrival(
    workers, make_agent, queue
):
    dana = make_agent("dana", status="break")
    calls = [arrive(queue=queue, number=f"+1415555{n:04d}") for n in range(3)]
    for call in calls:
        wait_until(lambda call=call: reasons(call) == ["no_agent_waiting"])

    status_choices.change_status(agent_id=dana.id, status=AgentStatus.AVAILABLE)
    offered_in_turn = []
    for _ in calls:
        offer = wait_until(lambda: Offer.objects.filter(state=OfferState.OFFERED).first())
        offered_in_turn.append(offer.call_id)
        finish_offer(offer)
        Agent.objects.filter(id=dana.id).update(status=AgentStatus.WRAP_UP)
        agent_status.ready(agent_id=dana.id)

    assert offered_in_turn == [call.id for call in calls]
    assert reasons(calls[1]) == ["no_agent_waiting", "waiting_fifo"]


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_freed_agent_first_gets_the_waiting_caller_whose_last_agent_they_are(
    workers, make_agent, make_customer, queue
):
    queue.last_agent_wait_seconds = 30
    queue.save()
    dana = make_agent("dana", status="busy")
    maya = make_customer("Maya Chen", phones=["+14155550123"])
    past_call(customer=maya, agent=dana, queue=queue)
    stranger = arrive(queue=queue, number="+14155550777")
    wait_until(lambda: reasons(stranger) == ["no_agent_waiting"])
    regular = arrive(queue=queue, customer=maya)
    wait_until(lambda: reasons(regular) == ["last_agent_busy_waited"])

    Agent.objects.filter(id=dana.id).update(status=AgentStatus.WRAP_UP)
    agent_status.ready(agent_id=dana.id)
    offer = wait_until(lambda: Offer.objects.filter(state=OfferState.OFFERED).first())

    assert offer.call == regular, "the caller who arrived second, but is Dana's, goes first"
    assert offer.agent == dana
    assert reasons(regular)[-1] == "waiting_last_agent_freed"


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_the_sweeper_routes_a_call_whose_message_was_lost(workers, make_agent, queue):
    make_agent("dana", status="available")

    call = arrive(queue=queue, number="+14155550555", publish=False)
    offer = wait_until(lambda: open_offer(call), timeout=8)

    assert reasons(call) == ["longest_idle"]
    assert (offer.offered_at - call.queued_at).total_seconds() >= 2


# Without workers: the router's functions called directly, as a redelivered task would.


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
