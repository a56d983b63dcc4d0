"""The wait for a busy last agent follows the caller: callers who avoid holding or are in a rush
are held only up to the queue's `hold_averse_wait_seconds`, callers fine on hold (and callers we
know nothing about) up to its full `last_agent_wait_seconds`. Through the real router
(`route_call`, `offer_next_call`, the sweeper's Celery worker) on real PostgreSQL and Redis."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import Group, User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from customers.models import HoldTolerance, Pace, Provenance
from routing import agent_status, router
from routing.models import Agent, Call, Offer, Queue
from routing.states import AgentStatus, OfferState
from tests.support.routing import (
    arrive,
    past_call,
    running_workers,
    wait_until,
)

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(90),
    pytest.mark.usefixtures("fast_logins"),
]

SAID = Provenance.SAID_BY_CALLER
INFERRED = Provenance.INFERRED_BY_AGENT
FULL_WINDOW = 30


def avoids(source: str) -> dict:
    return {"hold_tolerance": HoldTolerance.AVOID, "hold_tolerance_source": source}


def brisk(source: str) -> dict:
    return {"pace": Pace.BRISK, "pace_source": source}


def fine(source: str) -> dict:
    return {"hold_tolerance": HoldTolerance.FINE, "hold_tolerance_source": source}


AVERSE_CALLERS = [
    (avoids(SAID), "avoids_holding", "caller"),
    (avoids(INFERRED), "avoids_holding", "agent"),
    (brisk(SAID), "in_a_rush", "caller"),
    (brisk(INFERRED), "in_a_rush", "agent"),
]


@pytest.fixture
def hold_queue(queue) -> Queue:
    queue.last_agent_wait_seconds = FULL_WINDOW
    queue.hold_averse_wait_seconds = 0
    queue.offer_timeout_seconds = 15
    queue.save()
    return queue


@pytest.fixture
def team(make_agent, hold_queue):
    """Dana spoke with the caller last and is on a call; Sam is free and idle longest."""
    dana = make_agent("dana", status=AgentStatus.BUSY)
    sam = make_agent("sam", status=AgentStatus.AVAILABLE)
    Agent.objects.filter(id=sam.id).update(status_changed_at=timezone.now() - timedelta(minutes=5))
    return dana, sam


@pytest.fixture
def caller(make_customer, team, hold_queue):
    """A returning caller of Dana's, with the preferences a test gives."""

    def make(**preferences):
        customer = make_customer("Ruth Fischer", **preferences)
        past_call(customer=customer, agent=team[0], queue=hold_queue, days_ago=3)
        return customer

    return make


def reasons(call: Call) -> list[str]:
    return list(call.decisions.order_by("id").values_list("reason", flat=True))


def hold_detail(call: Call) -> dict:
    decision = call.decisions.filter(
        reason__in=["last_agent_busy_waited", "last_agent_busy_not_held", "last_agent_wait_expired"]
    ).first()
    detail = dict(decision.detail)
    return {key: detail[key] for key in ("hold_rule", "provenance", "wait_limit_seconds")}


def routed(queue: Queue, customer) -> Call:
    call = arrive(queue=queue, customer=customer, publish=False)
    router.route_call(call.id)
    call.refresh_from_db()
    return call


def open_offer(call: Call) -> Offer | None:
    return Offer.objects.filter(call=call, state=OfferState.OFFERED).first()


@pytest.mark.parametrize(
    ("preferences", "rule", "provenance"),
    AVERSE_CALLERS,
)
def test_a_caller_who_avoids_holding_or_is_in_a_rush_goes_straight_to_the_queue(
    caller, team, hold_queue, preferences, rule, provenance
):
    dana, sam = team
    call = routed(hold_queue, caller(**preferences))

    assert reasons(call) == ["last_agent_busy_not_held", "longest_idle"]
    assert hold_detail(call) == {
        "hold_rule": rule,
        "provenance": provenance,
        "wait_limit_seconds": 0,
    }
    assert open_offer(call).agent == sam
    assert call.last_agent_id == dana.id
    assert call.last_agent_wait_until is None


@pytest.mark.parametrize(
    ("preferences", "rule", "provenance"),
    AVERSE_CALLERS,
)
def test_with_a_short_limit_they_are_held_that_long_and_no_longer(
    caller, team, hold_queue, preferences, rule, provenance
):
    hold_queue.hold_averse_wait_seconds = 4
    hold_queue.save()
    before = timezone.now()

    call = routed(hold_queue, caller(**preferences))

    assert reasons(call) == ["last_agent_busy_waited"]
    assert hold_detail(call) == {
        "hold_rule": rule,
        "provenance": provenance,
        "wait_limit_seconds": 4,
    }
    assert open_offer(call) is None, "held for Dana: nobody else is offered the caller yet"
    held_for = (call.last_agent_wait_until - before).total_seconds()
    assert 4 <= held_for < 6


@pytest.mark.parametrize(
    ("preferences", "provenance"),
    [
        (fine(SAID), "caller"),
        (fine(INFERRED), "agent"),
    ],
)
@pytest.mark.parametrize("averse_limit", [0, 4])
def test_a_caller_fine_on_hold_waits_the_queues_full_window(
    caller, team, hold_queue, preferences, provenance, averse_limit
):
    hold_queue.hold_averse_wait_seconds = averse_limit
    hold_queue.save()
    before = timezone.now()

    call = routed(hold_queue, caller(**preferences))

    assert reasons(call) == ["last_agent_busy_waited"]
    assert hold_detail(call) == {
        "hold_rule": "fine_on_hold",
        "provenance": provenance,
        "wait_limit_seconds": FULL_WINDOW,
    }
    assert open_offer(call) is None
    assert FULL_WINDOW <= (call.last_agent_wait_until - before).total_seconds() < FULL_WINDOW + 2


@pytest.mark.parametrize("averse_limit", [0, 4])
def test_a_caller_we_know_nothing_about_waits_the_queues_window_as_before(
    caller, team, hold_queue, averse_limit
):
    hold_queue.hold_averse_wait_seconds = averse_limit
    hold_queue.save()
    unhurried = caller(pace=Pace.UNHURRIED, pace_source=SAID)

    call = routed(hold_queue, unhurried)

    assert reasons(call) == ["last_agent_busy_waited"]
    assert hold_detail(call) == {
        "hold_rule": "unknown",
        "provenance": "unknown",
        "wait_limit_seconds": FULL_WINDOW,
    }


def test_a_queue_that_never_waits_still_sends_everyone_on_as_before(caller, team, hold_queue):
    hold_queue.last_agent_wait_seconds = 0
    hold_queue.save()

    patient = routed(hold_queue, caller(**fine(SAID)))

    assert reasons(patient) == ["last_agent_wait_expired", "longest_idle"]
    assert hold_detail(patient)["hold_rule"] == "fine_on_hold"


def test_the_short_limit_never_holds_longer_than_the_full_window(caller, team, hold_queue):
    hold_queue.last_agent_wait_seconds = 3
    hold_queue.hold_averse_wait_seconds = 60
    hold_queue.save()

    call = routed(hold_queue, caller(**avoids(SAID)))

    assert hold_detail(call)["wait_limit_seconds"] == 3


@pytest.mark.parametrize(
    ("preferences", "rule", "provenance"),
    [
        # What the caller said beats what an agent inferred, either way round.
        ({**fine(SAID), **brisk(INFERRED)}, "fine_on_hold", "caller"),
        ({**fine(INFERRED), **brisk(SAID)}, "in_a_rush", "caller"),
        # Equal standing: the shorter wait wins.
        ({**fine(SAID), **brisk(SAID)}, "in_a_rush", "caller"),
        ({**fine(INFERRED), **brisk(INFERRED)}, "in_a_rush", "agent"),
        # Both short: avoiding hold is named first.
        ({**avoids(INFERRED), **brisk(INFERRED)}, "avoids_holding", "agent"),
        # A value of unknown origin (an import) counts least.
        ({**avoids(Provenance.UNKNOWN), **brisk(Provenance.UNKNOWN)}, "avoids_holding", "unknown"),
        ({**fine(SAID), **brisk(Provenance.UNKNOWN)}, "fine_on_hold", "caller"),
    ],
)
def test_when_preferences_disagree_the_callers_word_then_the_shorter_wait_wins(
    caller, team, hold_queue, preferences, rule, provenance
):
    call = routed(hold_queue, caller(**preferences))

    assert hold_detail(call)["hold_rule"] == rule
    assert hold_detail(call)["provenance"] == provenance


def test_the_last_agent_free_or_no_last_agent_applies_no_hold_rule(
    make_customer, caller, team, hold_queue
):
    dana, sam = team
    Agent.objects.filter(id=dana.id).update(status=AgentStatus.AVAILABLE)
    averse = caller(**avoids(SAID))
    stranger = make_customer("New Person", phones=["+14155550999"])

    to_dana = routed(hold_queue, averse)
    to_sam = routed(hold_queue, stranger)

    assert reasons(to_dana) == ["last_agent"]
    assert open_offer(to_dana).agent == dana
    assert reasons(to_sam) == ["longest_idle"]


def test_routing_reads_the_preferences_with_the_call_it_locks(caller, team, hold_queue):
    patient = caller(**fine(SAID))
    call = arrive(queue=hold_queue, customer=patient, publish=False)

    with CaptureQueriesContext(connection) as queries:
        router.route_call(call.id)

    assert reasons(call) == ["last_agent_busy_waited"]
    reads = [q["sql"] for q in queries.captured_queries if '"customers_customer"' in q["sql"]]
    assert len(reads) == 1, reads
    assert "FOR UPDATE" in reads[0] and '"routing_call"' in reads[0]


def test_a_held_caller_is_offered_to_the_last_agent_the_moment_they_free_up(
    caller, team, hold_queue
):
    dana, _ = team
    call = routed(hold_queue, caller(**fine(SAID)))
    Agent.objects.filter(id=dana.id).update(status=AgentStatus.WRAP_UP)

    agent_status.ready(agent_id=dana.id)
    router.offer_next_call(dana.id)

    assert open_offer(call).agent == dana
    assert reasons(call) == ["last_agent_busy_waited", "waiting_last_agent_freed"]


@pytest.fixture
def workers(django_db_setup, django_db_blocker, tmp_path_factory):
    with running_workers(tmp_path_factory.mktemp("beat"), concurrency=1) as running:
        yield running


@pytest.mark.slow
def test_with_real_workers_the_short_limit_runs_out_long_before_the_full_window(
    workers, caller, team, hold_queue
):
    dana, sam = team
    hold_queue.hold_averse_wait_seconds = 2
    hold_queue.save()
    in_a_rush = caller(pace=Pace.BRISK, pace_source=SAID)

    call = arrive(queue=hold_queue, customer=in_a_rush)
    offer = wait_until(lambda: open_offer(call), timeout=15)

    assert offer.agent == sam
    assert reasons(call) == ["last_agent_busy_waited", "last_agent_wait_expired", "longest_idle"]
    waited = call.decisions.get(reason="longest_idle").caller_waited_ms
    assert 2000 <= waited < FULL_WINDOW * 1000 / 2


def test_the_short_limit_is_set_where_queues_are_set(make_agent, hold_queue):
    supervisor = User.objects.create_user("morgan")
    supervisor.groups.add(Group.objects.get_or_create(name="supervisor")[0])
    api = APIClient()
    api.force_authenticate(supervisor)
    created = api.post(
        "/api/queues/",
        {
            "slug": "vip",
            "name": "VIP",
            "last_agent_wait_seconds": 30,
            "hold_averse_wait_seconds": 5,
        },
        format="json",
    )
    refused = api.post(
        "/api/queues/",
        {"slug": "vip2", "name": "VIP 2", "hold_averse_wait_seconds": -1},
        format="json",
    )
    admin = Client()
    admin.force_login(User.objects.create_superuser("root", password="pw-root"))
    form = admin.get(f"/admin/routing/queue/{hold_queue.id}/change/")

    assert created.status_code == 201, created.json()
    assert Queue.objects.get(slug="vip").hold_averse_wait_seconds == 5
    assert {q["slug"]: q["hold_averse_wait_seconds"] for q in api.get("/api/queues/").json()} == {
        "loyalty": 0,
        "vip": 5,
    }
    assert refused.status_code == 400 and set(refused.json()["errors"]) == {
        "hold_averse_wait_seconds"
    }
    assert form.status_code == 200 and b'name="hold_averse_wait_seconds"' in form.content
