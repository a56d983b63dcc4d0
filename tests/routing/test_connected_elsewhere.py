"""The telephony system's fact wins: an agent it connects to a call is on that call. An answer by
a second agent while the call is held with the first is a hand-over; a call transferred to (or
answered by) an agent at the moment they accept another caller leaves them on the phone
system's call, and the caller they accepted goes back to waiting at their place. Nobody is left
busy with no call, and nobody holds two. Signed events through the ASGI application, accepts
through the REST API."""

from __future__ import annotations

import threading

import pytest
from django.contrib.auth.models import User
from django.db import connection, transaction
from rest_framework.test import APIClient

from routing import router, selectors
from routing.models import Agent, Call, DecisionReason, Offer, RoutingDecision
from routing.states import TALKING_STATES, WAITING_STATES, AgentStatus, CallState, OfferState
from telephony.models import ConnectAttempt
from telephony.selectors import call_instruction
from telephony.signed_events.connect_push import push_call_connect
from tests.support.telephony import at, event, ringing, send

pytestmark = [pytest.mark.usefixtures("webhook_secret", "fast_logins"), pytest.mark.timeout(120)]


def statuses(*agents: Agent) -> list[str]:
    return [Agent.objects.get(id=agent.id).status for agent in agents]


def in_hand(agent: Agent) -> list[str]:
    """The calls the agent holds, by the phone system's id."""
    return sorted(selectors.calls_in_hand(agent.id).values_list("telephony_call_id", flat=True))


def as_user(user: User) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def available(agent: Agent) -> None:
    Agent.objects.filter(id=agent.id).update(status=AgentStatus.AVAILABLE)


# --- an answer by another agent while the call is held ----------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("offered_first", [False, True], ids=["answered-at-pbx", "offered"])
def test_an_answer_for_another_agent_while_the_call_is_held_hands_it_over(
    phone_system, queue, make_agent, offered_first
):
    dana = make_agent("dana", extension="1001", status="available" if offered_first else "offline")
    lee = make_agent("lee", extension="1002", status="offline")
    send(phone_system, ringing("CA1", at(0)))
    if offered_first:
        offer = Offer.objects.get(state=OfferState.OFFERED)
        assert as_user(dana.user).post(f"/api/offers/{offer.id}/accept/").status_code == 200
    else:
        available(dana)
    send(
        phone_system,
        event("call.answered", "CA1", at(5), agent="1001"),
        event("call.held", "CA1", at(20)),
    )
    available(lee)

    send(phone_system, event("call.answered", "CA1", at(40), agent="1002"))

    call = Call.objects.get(telephony_call_id="CA1")
    assert (call.state, call.agent) == (CallState.CONNECTED, lee)
    # Dana talked to the caller: she wraps up, with no call left in hand.
    assert statuses(dana, lee) == [AgentStatus.WRAP_UP, AgentStatus.BUSY]
    assert (in_hand(dana), in_hand(lee)) == ([], ["CA1"])
    send(phone_system, event("call.ended", "CA1", at(90), reason="completed"))
    assert statuses(dana, lee) == [AgentStatus.WRAP_UP, AgentStatus.WRAP_UP]


# --- a call put on an agent as they accept another ------------------------------------------


@pytest.fixture
def sam_accepted_a_caller(phone_system, queue, make_agent):
    """Dana talks to caller Y. Callers X and then Z wait; Sam comes available, is offered X,
    and accepts: the phone system is to connect X to Sam."""
    dana = make_agent("dana", extension="1001", status="available")
    sam = make_agent("sam", extension="1003", status="offline")
    send(
        phone_system,
        ringing("CA-Y", at(0)),
        event("call.answered", "CA-Y", at(5), agent="1001"),
        ringing("CA-X", at(10), **{"from": "+14155550901"}),
        ringing("CA-Z", at(12), **{"from": "+14155550902"}),
    )
    available(sam)
    router.offer_next_call(sam.id)
    offer = Offer.objects.get(state=OfferState.OFFERED)
    assert (offer.agent_id, offer.call.telephony_call_id) == (sam.id, "CA-X")
    taken = as_user(sam.user).post(f"/api/offers/{offer.id}/accept/")
    assert taken.status_code == 200, taken.content
    assert in_hand(sam) == ["CA-X"]
    return dana, sam


def assert_x_waits_again_at_its_place(sam: Agent) -> None:
    x = Call.objects.get(telephony_call_id="CA-X")
    assert (x.state, x.agent) == (CallState.QUEUED, None)
    assert list(selectors.waiting_calls().values_list("telephony_call_id", flat=True)) == [
        "CA-X",
        "CA-Z",
    ]
    assert RoutingDecision.objects.filter(
        call=x, reason=DecisionReason.AGENT_ON_ANOTHER_CALL, agent=sam
    ).exists()
    # A phone system that pulls is no longer told to connect Sam.
    assert call_instruction(telephony_call_id="CA-X")["agent"] is None


@pytest.mark.django_db
def test_a_transfer_landing_on_an_agent_who_just_accepted_a_caller_sends_that_caller_back(
    phone_system, sam_accepted_a_caller, settings
):
    dana, sam = sam_accepted_a_caller

    send(phone_system, event("call.transferred", "CA-Y", at(30), agent="1003"))

    assert in_hand(sam) == ["CA-Y"]
    assert statuses(dana, sam) == [AgentStatus.WRAP_UP, AgentStatus.BUSY]
    assert_x_waits_again_at_its_place(sam)
    # A push of "connect X to Sam" still on its way (retried) is no longer sent.
    settings.TELEPHONY_CONTROL_URL = "http://127.0.0.1:9/control"
    accepted = RoutingDecision.objects.get(
        call__telephony_call_id="CA-X", offer__state=OfferState.ACCEPTED
    )
    assert push_call_connect(call_pk=accepted.call_id, decision_pk=accepted.pk) is None
    assert not ConnectAttempt.objects.exists()


@pytest.mark.django_db
def test_an_answer_landing_on_an_agent_who_just_accepted_a_caller_sends_that_caller_back(
    phone_system, sam_accepted_a_caller
):
    dana, sam = sam_accepted_a_caller

    # Another caller reached Sam straight at the phone system.
    send(phone_system, event("call.answered", "CA-W", at(30), agent="1003"))

    assert in_hand(sam) == ["CA-W"]
    assert statuses(sam) == [AgentStatus.BUSY]
    assert_x_waits_again_at_its_place(sam)
    # Freed, Dana is offered the caller who waited longest: X, at its place.
    send(phone_system, event("call.ended", "CA-Y", at(60), reason="completed"))
    as_user(dana.user).post(f"/api/agents/{dana.id}/ready/")
    router.offer_next_call(dana.id)
    assert Offer.objects.get(state=OfferState.OFFERED, agent=dana).call.telephony_call_id == (
        "CA-X"
    )


@pytest.mark.django_db(transaction=True)
def test_an_accepted_caller_locked_at_that_moment_is_sent_back_by_the_sweeper(
    phone_system, sam_accepted_a_caller
):
    """Caller X is locked by another transaction when Y is transferred to Sam: X cannot be
    locked against the lock order then, so the sweeper sends it back right after."""
    dana, sam = sam_accepted_a_caller
    x = Call.objects.get(telephony_call_id="CA-X")
    locked, release = threading.Event(), threading.Event()

    def hold_x() -> None:
        try:
            with transaction.atomic():
                Call.objects.select_for_update().get(id=x.id)
                locked.set()
                release.wait(20)
        finally:
            connection.close()

    holder = threading.Thread(target=hold_x)
    holder.start()
    try:
        assert locked.wait(10)
        send(phone_system, event("call.transferred", "CA-Y", at(30), agent="1003"))
        assert Call.objects.get(id=x.id).agent == sam  # not yet
    finally:
        release.set()
        holder.join(20)

    assert router.sweep()["returned"] == 1

    assert in_hand(sam) == ["CA-Y"]
    assert_x_waits_again_at_its_place(sam)


@pytest.mark.django_db(transaction=True)
def test_an_accept_and_a_transfer_at_the_same_moment_never_leave_an_agent_two_calls(
    phone_system, queue, make_agent
):
    """Twenty times over, an agent accepts a caller in one thread while, in another, the phone
    system's transfer of a colleague's caller to them is applied. Whichever wins the agent's
    lock, the agent ends on the transferred call alone and the caller they accepted waits."""
    dana = make_agent("dana", extension="1001", status="available")
    sam = make_agent("sam", extension="1003", status="offline")
    sams_client = as_user(sam.user)
    for round_ in range(20):
        y, x = f"CA-Y{round_}", f"CA-X{round_}"
        available(dana)
        send(
            phone_system,
            ringing(y, at(round_ * 20)),
            event("call.answered", y, at(round_ * 20 + 5), agent="1001"),
            ringing(x, at(round_ * 20 + 10), **{"from": "+14155550901"}),
        )
        available(sam)
        router.offer_next_call(sam.id)
        offer = Offer.objects.get(state=OfferState.OFFERED, agent=sam)
        start = threading.Barrier(2)
        answers = []

        def accept(offer_id=offer.id, start=start, answers=answers) -> None:
            try:
                start.wait(10)
                answers.append(sams_client.post(f"/api/offers/{offer_id}/accept/").status_code)
            finally:
                connection.close()

        accepting = threading.Thread(target=accept)
        accepting.start()
        start.wait(10)
        send(phone_system, event("call.transferred", y, at(round_ * 20 + 30), agent="1003"))
        accepting.join(20)
        router.sweep()

        assert answers in ([200], [409]), answers
        assert in_hand(sam) == [y], (round_, answers)
        waiting = Call.objects.get(telephony_call_id=x)
        assert (waiting.state, waiting.agent) == (CallState.QUEUED, None), (round_, answers)
        # The round ends: both calls over, both agents free for the next.
        send(
            phone_system,
            event("call.ended", y, at(round_ * 20 + 60), reason="completed"),
            event("call.ended", x, at(round_ * 20 + 61)),
        )
        assert not Call.objects.filter(state__in=TALKING_STATES | WAITING_STATES).exists()
