"""Hand-offs that race: two agents handing their calls to the same free colleague at the same
moment, or a hand-off racing the router's offer of a waiting caller, never leave him with two
calls ringing or two calls in hand. Real PostgreSQL, one connection per thread."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from infrastructure.errors import Refused
from routing import router, transfers
from routing.models import Agent, Offer
from routing.states import AgentStatus, OfferState
from tests.support.routing import answer, arrive

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]


def at_once(*works) -> list[object]:
    """Run each of `works` in a thread of its own, all released together; what each returned
    or raised."""
    results: list[object] = [None] * len(works)
    barrier = threading.Barrier(len(works))

    def run(index, work):
        try:
            barrier.wait()
            results[index] = work()
        except Exception as error:  # reported to the test
            results[index] = error
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(n, work)) for n, work in enumerate(works)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return results


def test_two_hand_offs_to_one_colleague_at_once_ring_him_once(queue, make_agent):
    dana = make_agent("dana", status="available")
    first = answer(arrive(queue=queue, publish=False), dana)
    kim = make_agent("kim", status="available")
    second = answer(arrive(queue=queue, number="+14155550124", publish=False), kim)
    lee = make_agent("lee", status="available")

    results = at_once(
        lambda: transfers.request_transfer(
            agent_id=dana.id,
            telephony_call_id=first.telephony_call_id,
            to_agent_id=lee.id,
            note="a",
        ),
        lambda: transfers.request_transfer(
            agent_id=kim.id,
            telephony_call_id=second.telephony_call_id,
            to_agent_id=lee.id,
            note="b",
        ),
    )

    offers = [result for result in results if isinstance(result, Offer)]
    refusals = [result for result in results if isinstance(result, Refused)]
    assert len(offers) == 1 and len(refusals) == 1, results
    assert refusals[0].field == "to_agent"
    assert Offer.objects.filter(agent=lee, state=OfferState.OFFERED).count() == 1


def test_a_hand_off_racing_the_routers_offer_of_a_waiting_caller_rings_him_once(queue, make_agent):
    dana = make_agent("dana", status="available")
    on_call = answer(arrive(queue=queue, publish=False), dana)
    lee = make_agent("lee", status="available")
    waiting = arrive(queue=queue, number="+14155550125", publish=False)

    results = at_once(
        lambda: transfers.request_transfer(
            agent_id=dana.id,
            telephony_call_id=on_call.telephony_call_id,
            to_agent_id=lee.id,
            note="a",
        ),
        lambda: router.route_call(waiting.id),
    )

    assert not [result for result in results if not isinstance(result, Offer | Refused | None)]
    assert Offer.objects.filter(agent=lee, state=OfferState.OFFERED).count() == 1
    assert Agent.objects.get(id=lee.id).status == AgentStatus.AVAILABLE
