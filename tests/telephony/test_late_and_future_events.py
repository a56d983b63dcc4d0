"""Phone systems stamp events in whole seconds, run two clocks and deliver out of order: an end
is final for a live call whatever its stamp, an end that overtook its answer still leaves the
agent their wrap-up, and an event stamped far in the future is refused before it can freeze a
call. Signed events through the ASGI application, applied as the worker applies them."""

from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth.models import User
from rest_framework.test import APIClient

from routing.models import Agent, AgentStatusChange, Call, Offer
from routing.states import AgentStatus, CallState, OfferState
from telephony.models import CallEvent
from tests.support.telephony import at, event, ringing, send

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("webhook_secret", "fast_logins")]


def status(agent: Agent) -> str:
    return Agent.objects.get(id=agent.id).status


def the_call(call_id: str = "CA1") -> Call:
    return Call.objects.get(telephony_call_id=call_id)


def as_user(user: User) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def accepts_the_offer(agent: Agent, call_id: str = "CA1") -> None:
    offer = Offer.objects.get(call__telephony_call_id=call_id, state=OfferState.OFFERED)
    assert offer.agent_id == agent.id
    response = as_user(agent.user).post(f"/api/offers/{offer.id}/accept/")
    assert response.status_code == 200, response.content


# --- an end is final for a live call --------------------------------------------------------


@pytest.mark.parametrize(
    "talk, hang_up_at",
    [
        # Held and resumed at 30.4 s; the hang-up stamped in whole seconds: 30 s.
        ([event("call.held", "CA1", at(20)), event("call.resumed", "CA1", at(30.4))], 30),
        # The answer stamped by the switch, the hang-up by a media server whose clock is behind.
        ([], 4),
    ],
    ids=["whole-seconds", "second-clock"],
)
def test_an_end_stamped_before_the_latest_event_still_ends_the_call_and_frees_the_agent(
    phone_system, queue, make_agent, talk, hang_up_at
):
    dana = make_agent("dana", extension="1001", status="available")
    send(phone_system, ringing("CA1", at(0)), event("call.answered", "CA1", at(5), agent="1001"))
    send(phone_system, *talk)
    latest = the_call().last_event_at

    send(phone_system, event("call.ended", "CA1", at(hang_up_at), reason="completed"))

    call = the_call()
    assert (call.state, call.end_reason) == (CallState.ENDED, "completed")
    # It ended no earlier than what it follows.
    assert call.ended_at == latest == call.last_event_at
    assert CallEvent.objects.get(type="call.ended").applied is True
    assert status(dana) == AgentStatus.WRAP_UP


def test_an_end_stamped_before_the_ringing_still_abandons_a_waiting_call(phone_system, queue):
    send(phone_system, ringing("CA1", at(10)), event("call.ended", "CA1", at(9)))

    call = the_call()
    assert (call.state, call.ended_at) == (CallState.ABANDONED, at(10))


def test_an_end_for_a_call_already_over_changes_nothing(phone_system, queue, make_agent):
    make_agent("dana", extension="1001", status="available")
    send(
        phone_system,
        ringing("CA1", at(0)),
        event("call.answered", "CA1", at(5), agent="1001"),
        event("call.ended", "CA1", at(60), reason="completed"),
    )

    send(phone_system, event("call.ended", "CA1", at(50), reason="failed"))

    call = the_call()
    assert (call.state, call.end_reason, call.ended_at) == ("ended", "completed", at(60))
    late = CallEvent.objects.filter(type="call.ended").latest("id")
    assert late.applied is False


# --- an event stamped far in the future -------------------------------------------------------


def test_an_event_stamped_far_in_the_future_is_refused_naming_occurred_at_and_not_recorded(
    phone_system, queue, make_agent
):
    dana = make_agent("dana", extension="1001", status="available")
    send(phone_system, ringing("CA1", at(0)))

    response = phone_system.post(
        event("call.answered", "CA1", "2099-11-23T09:00:05Z", agent="1001")
    )

    assert response.status_code == 400
    assert "ahead of Rapport's clock" in response.json()["errors"]["occurred_at"][0]
    assert not CallEvent.objects.filter(type="call.answered").exists()
    # Not frozen: the call takes the phone system's next events, each in its place.
    send(
        phone_system,
        event("call.answered", "CA1", at(5), agent="1001"),
        event("call.held", "CA1", at(20)),
    )
    assert (the_call().state, status(dana)) == (CallState.HELD, AgentStatus.BUSY)
    send(phone_system, event("call.ended", "CA1", at(60), reason="completed"))
    assert (the_call().state, status(dana)) == (CallState.ENDED, AgentStatus.WRAP_UP)


def test_an_event_a_little_ahead_of_rapports_clock_is_accepted(phone_system, queue):
    soon = datetime.now(tz=UTC) + timedelta(minutes=2)

    response = phone_system.post(ringing("CA1", soon))

    assert response.status_code == 202, response.content
    assert the_call().ringing_at == soon


# --- an end that overtook its answer ----------------------------------------------------------


@pytest.mark.parametrize("reason", ["completed", ""])
def test_an_end_that_overtakes_its_answer_leaves_the_agent_in_wrap_up(
    phone_system, queue, make_agent, reason
):
    dana = make_agent("dana", extension="1001", status="available")
    send(phone_system, ringing("CA1", at(0)))
    accepts_the_offer(dana)

    # Posted first, stamped later: the hang-up overtook the answer on the way.
    send(phone_system, event("call.ended", "CA1", at(60), reason=reason))
    send(phone_system, event("call.answered", "CA1", at(5), agent="1001"))

    call = the_call()
    assert (call.state, call.agent, call.connected_at) == (CallState.ENDED, dana, at(5))
    assert status(dana) == AgentStatus.WRAP_UP
    assert list(
        AgentStatusChange.objects.filter(agent=dana).order_by("id").values_list("status", "reason")
    ) == [
        ("busy", "offer_accepted"),
        ("available", "caller_hung_up"),
        ("busy", "call_answered"),
        ("wrap_up", "call_ended"),
    ]


def test_an_end_that_overtakes_an_answer_at_the_phone_system_leaves_that_agent_in_wrap_up(
    phone_system, queue, make_agent
):
    """Answered at the phone system (not offered by Rapport): the agent was never busy here."""
    dana = make_agent("dana", extension="1001", status="offline")
    send(phone_system, ringing("CA1", at(0)))
    Agent.objects.filter(id=dana.id).update(status=AgentStatus.AVAILABLE)

    send(
        phone_system,
        event("call.ended", "CA1", at(60), reason="completed"),
        event("call.answered", "CA1", at(5), agent="1001"),
    )

    assert the_call().agent == dana
    assert status(dana) == AgentStatus.WRAP_UP


def test_an_answer_arriving_after_the_agent_took_another_call_leaves_them_on_it(
    phone_system, queue, make_agent
):
    dana = make_agent("dana", extension="1001", status="available")
    send(phone_system, ringing("CA1", at(0)))
    accepts_the_offer(dana)
    send(phone_system, event("call.ended", "CA1", at(60), reason="completed"))
    # Freed, Dana is connected to the next caller before the first call's answer arrives.
    send(
        phone_system,
        ringing("CA2", at(61), **{"from": "+14155550999"}),
        event("call.answered", "CA2", at(62), agent="1001"),
    )

    send(phone_system, event("call.answered", "CA1", at(5), agent="1001"))

    assert status(dana) == AgentStatus.BUSY
    assert the_call("CA2").state == CallState.CONNECTED


def test_an_answer_stamped_after_the_end_gives_no_wrap_up(phone_system, queue, make_agent):
    """Stamped after the caller hung up, the answer did not happen before the end: nothing to
    wrap up."""
    dana = make_agent("dana", extension="1001", status="offline")
    send(phone_system, ringing("CA1", at(0)))
    Agent.objects.filter(id=dana.id).update(status=AgentStatus.AVAILABLE)

    send(
        phone_system,
        event("call.ended", "CA1", at(30), reason="abandoned"),
        event("call.answered", "CA1", at(40), agent="1001"),
    )

    assert the_call().state == CallState.ABANDONED
    assert status(dana) == AgentStatus.AVAILABLE
