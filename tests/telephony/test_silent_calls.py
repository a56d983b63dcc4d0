"""A live call the phone system has gone silent on (its hang-up never came) is ended as `lost` by
a sweep that beat runs, so nobody stays busy overnight: ended if it was connected (the agent
wraps up), abandoned if not (the agent who accepted it is free). The sweep runs as beat sends
it (its task name), and once with a real worker and beat."""

import logging
from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone
from rest_framework.test import APIClient

from rapport.celery import app as celery_app
from routing.models import Agent, AgentStatusChange, Call, Offer
from routing.states import AgentStatus, CallState, OfferState
from telephony.models import CallEvent
from tests.support.routing import running_workers, wait_until
from tests.support.telephony import at, event, ringing, send

pytestmark = [pytest.mark.usefixtures("webhook_secret", "fast_logins")]


def status(agent: Agent) -> str:
    return Agent.objects.get(id=agent.id).status


def the_call(call_id: str = "CA1") -> Call:
    return Call.objects.get(telephony_call_id=call_id)


def silent_for(hours: float, call_id: str = "CA1") -> None:
    """Nothing heard of the call, nor any change to it, for `hours`."""
    long_ago = timezone.now() - timedelta(hours=hours)
    Call.objects.filter(telephony_call_id=call_id).update(state_changed_at=long_ago)
    CallEvent.objects.filter(call__telephony_call_id=call_id).update(received_at=long_ago)


def beat_sends_the_sweep() -> None:
    celery_app.tasks["telephony.end_silent_calls"].apply(throw=True)


def beat_would_send_it() -> bool:
    schedule = settings.CELERY_BEAT_SCHEDULE["telephony-silent-calls"]["schedule"]
    return schedule.is_due(timezone.now() - timedelta(hours=1)).is_due


@pytest.mark.django_db
def test_a_connected_call_gone_silent_is_ended_as_lost_and_its_agent_wraps_up(
    phone_system, queue, make_agent, caplog
):
    dana = make_agent("dana", extension="1001", status="available")
    send(phone_system, ringing("CA1", at(0)), event("call.answered", "CA1", at(5), agent="1001"))
    assert not beat_would_send_it()
    silent_for(hours=5)
    assert beat_would_send_it()

    with caplog.at_level(logging.WARNING, logger="telephony.lost_calls"):
        beat_sends_the_sweep()

    call = the_call()
    assert (call.state, call.end_reason) == (CallState.ENDED, "lost")
    assert status(dana) == AgentStatus.WRAP_UP
    change = AgentStatusChange.objects.filter(agent=dana).latest("id")
    assert (change.status, change.reason) == (AgentStatus.WRAP_UP, "call_lost")
    ended = CallEvent.objects.get(type="call.ended")
    assert ended.applied is True
    assert ended.payload["ended_by_rapport"]["sweep"] == "silent_call"
    assert "'CA1'" in caplog.text and "lost" in caplog.text
    assert not beat_would_send_it()


@pytest.mark.django_db
def test_an_accepted_call_never_connected_gone_silent_is_abandoned_and_frees_its_agent(
    phone_system, queue, make_agent
):
    dana = make_agent("dana", extension="1001", status="available")
    send(phone_system, ringing("CA1", at(0)))
    offer = Offer.objects.get(state=OfferState.OFFERED)
    client = APIClient()
    client.force_authenticate(dana.user)
    assert client.post(f"/api/offers/{offer.id}/accept/").status_code == 200
    silent_for(hours=5)

    beat_sends_the_sweep()

    call = the_call()
    assert (call.state, call.end_reason) == (CallState.ABANDONED, "lost")
    assert status(dana) == AgentStatus.AVAILABLE


@pytest.mark.django_db
def test_a_call_heard_from_or_changed_lately_is_left_alone(phone_system, queue, make_agent):
    make_agent("dana", extension="1001", status="available")
    send(phone_system, ringing("CA1", at(0)), event("call.answered", "CA1", at(5), agent="1001"))
    silent_for(hours=5)
    # An event arrives (kept, not applied: it is older than the answer) and is heard all the same.
    send(phone_system, event("call.held", "CA1", at(1)))
    # A caller who has waited five hours, offered to an agent five minutes ago.
    send(phone_system, ringing("CA2", at(0), **{"from": "+14155550999"}))
    silent_for(hours=5, call_id="CA2")
    Call.objects.filter(telephony_call_id="CA2").update(
        state_changed_at=timezone.now() - timedelta(minutes=5)
    )

    beat_sends_the_sweep()

    assert the_call("CA1").state == CallState.CONNECTED
    assert the_call("CA2").state == CallState.QUEUED


@pytest.mark.django_db
def test_the_hang_up_that_comes_after_the_sweep_is_kept_not_applied(
    phone_system, queue, make_agent
):
    make_agent("dana", extension="1001", status="available")
    send(phone_system, ringing("CA1", at(0)), event("call.answered", "CA1", at(5), agent="1001"))
    silent_for(hours=5)
    beat_sends_the_sweep()

    send(phone_system, event("call.ended", "CA1", at(60), reason="completed"))

    call = the_call()
    assert (call.state, call.end_reason) == (CallState.ENDED, "lost")
    late = CallEvent.objects.filter(type="call.ended").latest("id")
    assert late.applied is False


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
@pytest.mark.timeout(120)
def test_a_real_worker_and_beat_end_a_silent_call_and_free_its_agent(
    phone_system, queue, make_agent, monkeypatch, tmp_path
):
    dana = make_agent("dana", extension="1001", status="available")
    send(phone_system, ringing("CA1", at(0)), event("call.answered", "CA1", at(5), agent="1001"))
    monkeypatch.setenv("TELEPHONY_SILENT_CALL_SECONDS", "2")

    with running_workers(tmp_path):

        def ended():
            """the silent call ended by the worker's sweep"""
            return the_call().state == CallState.ENDED

        wait_until(ended, timeout=60, every=0.2)

    assert the_call().end_reason == "lost"
    assert status(dana) == AgentStatus.WRAP_UP
