"""Sticky routing with real Celery workers, beat and the sweeper, against real PostgreSQL and
Redis: the caller goes back to the agent they last spoke with, within a bounded wait."""

from datetime import timedelta

import pytest
from django.utils import timezone

from routing import agent_status, offers, status_choices
from routing.models import Agent, AgentStatusChange, Call, Offer
from routing.states import AgentStatus, OfferState
from tests.support.routing import (
    answer,
    arrive,
    hang_up,
    past_call,
    running_workers,
    wait_until,
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("fast_logins"),
]


@pytest.fixture(scope="module")
def workers(django_db_setup, django_db_blocker, tmp_path_factory):
    with running_workers(tmp_path_factory.mktemp("beat"), concurrency=2) as running:
        yield running


@pytest.fixture
def fast_queue(queue):
    queue.offer_timeout_seconds = 2
    queue.last_agent_wait_seconds = 2
    queue.wrap_up_seconds = 2
    queue.save()
    return queue


@pytest.fixture
def team(make_agent, fast_queue):
    """Dana spoke with Maya last; Sam has been idle longest; Lee next."""
    dana = make_agent("dana", status="available")
    sam = make_agent("sam", status="available")
    lee = make_agent("lee", status="available")
    now = timezone.now()
    for agent, idle_since in ((sam, 300), (lee, 200), (dana, 100)):
        Agent.objects.filter(id=agent.id).update(
            status_changed_at=now - timedelta(seconds=idle_since)
        )
    return dana, sam, lee


@pytest.fixture
def maya(make_customer, team, fast_queue):
    customer = make_customer("Maya Chen")
    past_call(customer=customer, agent=team[1], queue=fast_queue, days_ago=30)
    past_call(customer=customer, agent=team[0], queue=fast_queue, days_ago=2)
    return customer


def open_offer(call: Call) -> Offer | None:
    return Offer.objects.filter(call=call, state=OfferState.OFFERED).first()


def reasons(call: Call) -> list[str]:
    return list(call.decisions.order_by("id").values_list("reason", flat=True))


def set_status(agent: Agent, status: str) -> None:
    Agent.objects.filter(id=agent.id).update(status=status, status_changed_at=timezone.now())


def test_it_offers_the_call_to_the_last_agent_when_they_are_free(workers, team, maya, fast_queue):
    dana, sam, _ = team
    call = arrive(queue=fast_queue, customer=maya)

    offer = wait_until(lambda: open_offer(call))

    assert offer.agent == dana
    assert reasons(call) == ["last_agent"], list(call.decisions.values("reason", "detail"))
    call.refresh_from_db()
    assert call.last_agent == dana
    assert call.state == "offered"


def test_it_waits_for_a_busy_last_agent_and_offers_the_moment_they_are_free(
    workers, team, maya, fast_queue
):
    dana, _, _ = team
    fast_queue.last_agent_wait_seconds = 10
    fast_queue.save()
    set_status(dana, AgentStatus.WRAP_UP)

    call = arrive(queue=fast_queue, customer=maya)
    wait_until(lambda: reasons(call) == ["last_agent_busy_waited"])
    call.refresh_from_db()
    assert call.last_agent_wait_until is not None
    assert open_offer(call) is None, "nobody else is offered a caller held for their agent"

    agent_status.ready(agent_id=dana.id)
    offer = wait_until(lambda: open_offer(call), timeout=5)

    assert offer.agent == dana
    assert reasons(call) == ["last_agent_busy_waited", "waiting_last_agent_freed"]


def test_it_opens_the_call_to_the_longest_idle_agent_when_the_wait_runs_out(
    workers, team, maya, fast_queue
):
    dana, sam, _ = team
    set_status(dana, AgentStatus.BUSY)

    call = arrive(queue=fast_queue, customer=maya)
    wait_until(lambda: reasons(call) == ["last_agent_busy_waited"])
    assert open_offer(call) is None

    offer = wait_until(lambda: open_offer(call), timeout=8)

    assert offer.agent == sam
    assert reasons(call) == ["last_agent_busy_waited", "last_agent_wait_expired", "longest_idle"]
    waited = call.decisions.get(reason="longest_idle").caller_waited_ms
    assert 2000 <= waited < 6000


def test_it_goes_to_the_queue_at_once_when_the_last_agent_is_on_break(
    workers, team, maya, fast_queue
):
    dana, sam, _ = team
    set_status(dana, AgentStatus.BREAK)

    call = arrive(queue=fast_queue, customer=maya)
    offer = wait_until(lambda: open_offer(call))

    assert offer.agent == sam
    assert reasons(call) == ["last_agent_unavailable", "longest_idle"]


def test_it_offers_the_queue_when_the_last_agent_declines(workers, team, maya, fast_queue):
    dana, sam, _ = team
    call = arrive(queue=fast_queue, customer=maya)
    first = wait_until(lambda: open_offer(call))
    assert first.agent == dana

    offers.decline_offer(offer_id=first.id, agent_id=dana.id)
    second = wait_until(lambda: open_offer(call))

    assert second.agent == sam
    assert reasons(call) == ["last_agent", "last_agent_declined", "longest_idle"]
    dana.refresh_from_db()
    assert dana.status == AgentStatus.AVAILABLE


def test_it_moves_an_agent_who_lets_an_offer_ring_out_to_break(workers, team, maya, fast_queue):
    dana, sam, _ = team
    call = arrive(queue=fast_queue, customer=maya)
    first = wait_until(lambda: open_offer(call))
    assert first.agent == dana

    second = wait_until(lambda: (offer := open_offer(call)) and offer.agent != dana and offer)

    first.refresh_from_db()
    assert first.state == OfferState.TIMED_OUT
    assert 2.0 <= (first.responded_at - first.offered_at).total_seconds() < 4.0
    assert second.agent == sam
    assert reasons(call) == ["last_agent", "offer_timed_out", "longest_idle"]
    dana.refresh_from_db()
    assert dana.status == AgentStatus.BREAK
    change = AgentStatusChange.objects.filter(agent=dana).first()
    assert (change.previous_status, change.status, change.reason) == (
        "available",
        "break",
        "offer_timed_out",
    )


def test_it_withdraws_the_offer_when_the_caller_hangs_up(workers, team, maya, fast_queue):
    dana, _, _ = team
    call = arrive(queue=fast_queue, customer=maya)
    offer = wait_until(lambda: open_offer(call))

    hang_up(call)

    offer.refresh_from_db()
    assert offer.state == OfferState.WITHDRAWN
    dana.refresh_from_db()
    assert dana.status == AgentStatus.AVAILABLE


def test_wrap_up_follows_a_call_and_ends_at_the_queue_limit(workers, team, maya, fast_queue):
    dana, _, _ = team
    call = arrive(queue=fast_queue, customer=maya)
    offer = wait_until(lambda: open_offer(call))
    offers.accept_offer(offer_id=offer.id, agent_id=dana.id)
    dana.refresh_from_db()
    assert dana.status == AgentStatus.BUSY

    answer(call, dana)
    hang_up(call)
    dana.refresh_from_db()
    assert dana.status == AgentStatus.WRAP_UP

    wait_until(lambda: Agent.objects.get(id=dana.id).status == AgentStatus.AVAILABLE, timeout=6)
    change = AgentStatusChange.objects.filter(agent=dana).first()
    assert change.reason == "wrap_up_limit"
    assert (change.changed_at - dana.status_changed_at).total_seconds() >= 2.0


def test_when_the_wait_runs_out_with_nobody_free_the_caller_waits_for_the_queue(
    workers, team, maya, fast_queue
):
    dana, sam, lee = team
    set_status(dana, AgentStatus.BUSY)
    set_status(sam, AgentStatus.BREAK)
    set_status(lee, AgentStatus.OFFLINE)

    call = arrive(queue=fast_queue, customer=maya)
    wait_until(
        lambda: (
            reasons(call)
            == ["last_agent_busy_waited", "last_agent_wait_expired", "no_agent_waiting"]
        ),
        timeout=8,
    )
    status_choices.change_status(agent_id=sam.id, status=AgentStatus.AVAILABLE)
    offer = wait_until(lambda: open_offer(call))

    assert offer.agent == sam
    assert reasons(call)[-1] == "waiting_fifo"
