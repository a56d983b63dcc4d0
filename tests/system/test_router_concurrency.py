"""Hundreds of calls at once on 4 Celery worker processes: no agent ever holds two offers or two
calls, no call is offered to two agents at once, and every caller is served."""

import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from django.db import connection

from routing import agent_status, offers
from routing.models import Agent, Call, Offer
from routing.states import AgentStatus, CallState, OfferState
from tests.support.routing import (
    answer,
    calls_arriving_at_once,
    hang_up,
    past_call,
    running_workers,
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("fast_logins"),
]

CALLS = 200
DRIVERS = 4
AGENTS = 50


def take_calls(agent_ids: list[int], *, deadline: float) -> list[int]:
    """One of several agents' hands: accept what rings for its agents, talk, hang up, ready."""
    served = []
    try:
        unserved = Call.objects.filter(connected_at__isnull=True, state=CallState.OFFERED)
        while unserved.exists() or Call.objects.filter(state=CallState.QUEUED).exists():
            assert time.monotonic() < deadline, "not every call was served in time"
            ringing = list(
                Offer.objects.filter(
                    state=OfferState.OFFERED, agent_id__in=agent_ids
                ).select_related("call", "agent")
            )
            if not ringing:
                time.sleep(0.02)
                continue
            for offer in ringing:
                offers.accept_offer(offer_id=offer.id, agent_id=offer.agent_id)
                call = answer(offer.call, offer.agent)
                hang_up(call)
                agent_status.ready(agent_id=offer.agent_id)
                served.append(offer.call_id)
    finally:
        connection.close()
    return served


def overlapping(intervals: list[tuple]) -> list[tuple]:
    intervals = sorted(intervals)
    return [
        (first, second)
        for first, second in zip(intervals, intervals[1:], strict=False)
        if second[0] < first[1]
    ]


def test_no_agent_ever_holds_two_offers_or_two_calls(make_agent, make_customer, queue, tmp_path):
    queue.offer_timeout_seconds = 60
    queue.last_agent_wait_seconds = 1
    queue.save()
    agents = [make_agent(f"agent{n:02d}", status="available") for n in range(AGENTS)]
    # A third of the callers have a last agent, so both routing paths race each other.
    customers = []
    for n in range(CALLS // 3):
        customer = make_customer(f"Caller {n}", phones=[f"+1415556{n:04d}"])
        past_call(customer=customer, agent=agents[n % AGENTS], queue=queue, days_ago=1 + n / 100)
        customers.append(customer)

    with running_workers(tmp_path, concurrency=4):
        call_ids = calls_arriving_at_once(queue, CALLS, customers=customers)
        deadline = time.monotonic() + 50
        with ThreadPoolExecutor(DRIVERS) as pool:
            hands = [[agent.id for agent in agents[n::DRIVERS]] for n in range(DRIVERS)]
            shares = pool.map(lambda ids: take_calls(ids, deadline=deadline), hands)
            served = [call_id for share in shares for call_id in share]

    assert sorted(served) == sorted(call_ids)
    offers = list(Offer.objects.filter(call_id__in=call_ids))
    accepted = defaultdict(list)
    by_agent = defaultdict(list)
    by_call = defaultdict(list)
    for offer in offers:
        assert offer.state in (OfferState.ACCEPTED, OfferState.DECLINED, OfferState.TIMED_OUT)
        span = (offer.offered_at, offer.responded_at, offer.id)
        by_agent[offer.agent_id].append(span)
        by_call[offer.call_id].append(span)
        if offer.state == OfferState.ACCEPTED:
            accepted[offer.call_id].append(offer.agent_id)
    assert all(len(agents_) == 1 for agents_ in accepted.values()) and len(accepted) == CALLS
    assert not [pair for spans in by_agent.values() for pair in overlapping(spans)]
    assert not [pair for spans in by_call.values() for pair in overlapping(spans)]
    talks = defaultdict(list)
    for call in Call.objects.filter(id__in=call_ids):
        talks[call.agent_id].append((call.connected_at, call.ended_at, call.id))
    assert not [pair for spans in talks.values() for pair in overlapping(spans)]
    assert Agent.objects.filter(status=AgentStatus.AVAILABLE).count() == AGENTS
    # The wait for a busy last agent was bounded: nobody waited for long.
    slowest = max(o.offered_at - Call.objects.get(id=o.call_id).queued_at for o in offers)
    assert slowest < timedelta(seconds=50)
