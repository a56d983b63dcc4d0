"""Workers die in the middle of routing (kill -9): every call still ends up offered, once."""

import os
import signal
import time

import pytest

from routing.models import Call, Offer
from routing.states import CallState, OfferState
from tests.support.routing import (
    calls_arriving_at_once,
    running_workers,
    wait_until,
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("fast_logins"),
]

CALLS = 120


@pytest.fixture
def agents_for_everyone(make_agent, queue):
    queue.offer_timeout_seconds = 120
    queue.save()
    # A few spare agents: an agent locked by a killed transaction is skipped, not waited for.
    return [make_agent(f"agent{n:03d}", status="available") for n in range(CALLS + 5)]


def offered_count() -> int:
    return Offer.objects.filter(state=OfferState.OFFERED).count()


def assert_each_call_rings_for_exactly_one_agent(call_ids: list[int]) -> None:
    offers = list(Offer.objects.filter(call_id__in=call_ids))
    assert sorted(offer.call_id for offer in offers) == sorted(call_ids)
    assert len({offer.agent_id for offer in offers}) == len(offers)
    assert all(offer.state == OfferState.OFFERED for offer in offers)
    assert Call.objects.filter(id__in=call_ids, state=CallState.OFFERED).count() == len(call_ids)
    # A call whose only free agent was still locked by a dying transaction waits a moment and
    # is then offered by the sweeper to that agent, first in line.
    assert {offer.decision.reason for offer in offers} <= {"longest_idle", "waiting_fifo"}


def test_the_sweeper_routes_every_call_after_the_whole_worker_is_killed(
    agents_for_everyone, queue, tmp_path
):
    with running_workers(tmp_path, concurrency=2) as workers:
        call_ids = calls_arriving_at_once(queue, CALLS)
        wait_until(lambda: offered_count() > 0, timeout=20)
        workers.kill_hard()
        offered_when_killed = offered_count()
        assert offered_when_killed < CALLS, "the kill must land in the middle of routing"

        # A fresh worker and scheduler; the dead one's messages are gone with it (they come
        # back only after the broker's visibility timeout): the sweeper finds the calls.
        workers.start()
        wait_until(lambda: offered_count() == CALLS, timeout=40)

    assert_each_call_rings_for_exactly_one_agent(call_ids)


def test_a_killed_pool_process_loses_no_call(agents_for_everyone, queue, tmp_path):
    # No scheduler here: only acks_late and reject-on-worker-lost bring the tasks back.
    with running_workers(tmp_path, concurrency=2, beat=False) as workers:
        call_ids = calls_arriving_at_once(queue, CALLS)
        wait_until(lambda: offered_count() > 0, timeout=20)
        killed = workers.child_pids()
        for pid in killed:
            os.kill(pid, signal.SIGKILL)
        offered_when_killed = offered_count()
        assert killed and offered_when_killed < CALLS

        wait_until(lambda: offered_count() == CALLS, timeout=40)
        time.sleep(0.5)

    assert_each_call_rings_for_exactly_one_agent(call_ids)
