"""The queue, routed by real Celery workers with beat: longest-idle agent first; with nobody
free, callers wait and are offered in order of arrival, except that a freed agent first gets a
waiting caller whose last agent they are; the sweeper routes a call whose message was lost.
tests/routing/test_queue_routing.py calls the router's functions directly."""

from datetime import timedelta

import pytest
from django.utils import timezone

from routing import agent_status, offers, status_choices
from routing.models import Agent, Call, Offer
from routing.states import AgentStatus, CallState, OfferState
from tests.support.routing import (
    arrive,
    past_call,
    running_workers,
    wait_until,
)

pytestmark = pytest.mark.usefixtures("fast_logins")


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
