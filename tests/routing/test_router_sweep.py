"""The router's sweeper on a quiet line: beat sends none, one query a sweep, and nothing in flight
is missed."""

from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from routing import router
from routing.models import DEFAULT_WRAP_UP_SECONDS, Agent, Offer
from routing.states import AgentStatus, OfferState
from tests.support.routing import arrive

pytestmark = pytest.mark.django_db


def test_a_sweep_on_a_quiet_line_is_one_query(make_agent, django_assert_num_queries):
    make_agent("dana", status=AgentStatus.AVAILABLE)
    make_agent("eli", status=AgentStatus.BUSY)

    with django_assert_num_queries(1):
        assert router.sweep() == {}


def test_an_offer_that_rang_out_after_a_quiet_moment_is_timed_out(make_agent, queue):
    dana = make_agent("dana", status=AgentStatus.AVAILABLE)
    router.sweep()
    call = arrive(queue=queue, publish=False)
    router.route_call(call.id)
    Offer.objects.filter(call=call).update(expires_at=timezone.now() - timedelta(seconds=1))

    done = router.sweep()

    assert done["timed_out"] == 1
    assert Offer.objects.get(call=call, agent=dana).state == OfferState.TIMED_OUT


def test_a_wrap_up_that_ran_over_ends_after_a_quiet_moment(make_agent):
    dana = make_agent("dana", status=AgentStatus.AVAILABLE)
    router.sweep()
    Agent.objects.filter(id=dana.id).update(
        status=AgentStatus.WRAP_UP, status_changed_at=timezone.now() - timedelta(hours=1)
    )

    assert router.sweep()["wrap_ups_ended"] == 1
    assert Agent.objects.get(id=dana.id).status != AgentStatus.WRAP_UP


def test_a_call_whose_hand_off_was_lost_is_routed_after_a_quiet_moment(make_agent, queue):
    make_agent("dana", status=AgentStatus.AVAILABLE)
    router.sweep()
    call = arrive(queue=queue, publish=False)
    call.queued_at = timezone.now() - timedelta(seconds=10)
    call.save(update_fields=["queued_at"])

    assert router.sweep()["rerouted"] == 1
    assert Offer.objects.filter(call=call, state=OfferState.OFFERED).exists()


def test_beat_sends_no_sweep_on_a_quiet_line_and_one_every_interval_while_a_call_waits(
    make_agent, queue
):
    """Beat asks the database instead of waking a worker every second for nothing."""
    schedule = settings.CELERY_BEAT_SCHEDULE["routing-sweep"]["schedule"]
    last_sweep = timezone.now() - timedelta(minutes=1)
    make_agent("dana", status=AgentStatus.AVAILABLE)

    assert not schedule.is_due(last_sweep).is_due

    arrive(queue=queue, publish=False)

    assert schedule.is_due(last_sweep).is_due
    assert not schedule.is_due(timezone.now()).is_due


def test_agents_wrapping_up_within_their_limit_wake_no_sweep(make_agent, queue):
    """After a rush, agents wrap up for minutes: the sweeper has nothing to do until a wrap-up
    runs over, so beat sends none, and one as soon as it does."""
    schedule = settings.CELERY_BEAT_SCHEDULE["routing-sweep"]["schedule"]
    last_sweep = timezone.now() - timedelta(minutes=1)
    dana = make_agent("dana", status=AgentStatus.AVAILABLE)
    queue.wrap_up_seconds = 60
    queue.save(update_fields=["wrap_up_seconds"])
    call = arrive(queue=queue, publish=False)
    call.state, call.agent, call.ended_at = "ended", dana, timezone.now()
    call.save(update_fields=["state", "agent", "ended_at"])
    Agent.objects.filter(id=dana.id).update(
        status=AgentStatus.WRAP_UP,
        wrap_up_call=call,
        status_changed_at=timezone.now() - timedelta(seconds=50),
    )

    assert not schedule.is_due(last_sweep).is_due

    Agent.objects.filter(id=dana.id).update(
        status_changed_at=timezone.now() - timedelta(seconds=61)
    )

    assert schedule.is_due(last_sweep).is_due
    assert router.sweep()["wrap_ups_ended"] == 1


def test_a_wrap_up_with_no_limit_of_its_own_runs_the_default_limit(make_agent):
    dana = make_agent("dana", status=AgentStatus.AVAILABLE)
    Agent.objects.filter(id=dana.id).update(
        status=AgentStatus.WRAP_UP,
        status_changed_at=timezone.now() - timedelta(seconds=DEFAULT_WRAP_UP_SECONDS - 5),
    )

    assert router.sweep() == {}

    Agent.objects.filter(id=dana.id).update(
        status_changed_at=timezone.now() - timedelta(seconds=DEFAULT_WRAP_UP_SECONDS + 1)
    )

    assert router.sweep()["wrap_ups_ended"] == 1
