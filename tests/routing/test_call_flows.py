"""Whole calls as the telephony system plays them (signed webhooks) and the agents see them (their
sockets): transfers, an agent never on two calls, a call being connected left alone, and every
caller shown to an agent recorded in the access log."""

from __future__ import annotations

from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import Group, User
from django.utils import timezone
from rest_framework.test import APIClient

from customers.models import ContextAccess
from rapport.asgi import application
from routing import router
from routing.models import Agent, Call, Offer, Queue, RoutingDecision
from routing.states import AgentStatus, CallState, OfferState
from telephony.models import CallEvent
from tests.support.routing import arrive, tasks_published
from tests.support.sockets import fresh_channel_layer, socket_headers  # noqa: F401 (fixture)
from tests.support.telephony import at, event, ringing, send

pytestmark = [
    pytest.mark.usefixtures("webhook_secret"),
    pytest.mark.timeout(120),
    pytest.mark.usefixtures("fast_logins"),
]


def statuses(*agents: Agent) -> list[str]:
    return [Agent.objects.get(id=agent.id).status for agent in agents]


def calls_in_hand(agent: Agent) -> int:
    live = [CallState.CONNECTED, CallState.HELD, CallState.TRANSFERRED]
    return Call.objects.filter(agent=agent, state__in=live).count()


def as_user(user: User) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def maya(make_customer):
    return make_customer("Maya Chen", phones=["+14155550123"])


@pytest.fixture
def supervisor(db) -> User:
    user = User.objects.create_user("morgan")
    user.groups.add(Group.objects.get_or_create(name="supervisor")[0])
    return user


async def messages_until(socket: WebsocketCommunicator, done) -> list[dict]:
    """Every message the socket receives until `done(messages)` holds."""
    received: list[dict] = []
    while not done(received):
        received.append(await socket.receive_json_from(timeout=10))
    return received


def of_type(messages: list[dict], kind: str) -> list[dict]:
    return [message for message in messages if message["type"] == kind]


# --- transfers ------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_transfer_moves_the_call_and_the_caller_to_the_new_agent(
    phone_system, queue, make_agent, maya
):
    dana = make_agent("dana", extension="1001", status="available")
    lee = make_agent("lee", extension="1002", status="available")
    dana_headers, lee_headers = socket_headers(dana.user), socket_headers(lee.user)

    def lee_rings_for_another_caller() -> Offer:
        other = arrive(queue=queue, number="+14155550999", publish=False)
        router.route_call(other.id)
        return Offer.objects.get(call=other, state=OfferState.OFFERED)

    async def scenario():
        dana_socket = WebsocketCommunicator(application, "/ws/agent/", headers=dana_headers)
        lee_socket = WebsocketCommunicator(application, "/ws/agent/", headers=lee_headers)
        await dana_socket.connect()
        await lee_socket.connect()
        await dana_socket.receive_json_from(timeout=10)
        await lee_socket.receive_json_from(timeout=10)
        await database_sync_to_async(send)(
            phone_system,
            ringing("CA-T", at(0)),
            event("call.answered", "CA-T", at(5), agent="1001"),
        )
        await messages_until(dana_socket, lambda got: of_type(got, "call"))
        other_offer = await database_sync_to_async(lee_rings_for_another_caller)()
        await messages_until(lee_socket, lambda got: of_type(got, "offer"))

        await database_sync_to_async(send)(
            phone_system, event("call.transferred", "CA-T", at(60), agent="1002")
        )
        to_dana = await messages_until(dana_socket, lambda got: of_type(got, "call"))
        to_lee = await messages_until(
            lee_socket, lambda got: of_type(got, "call") and of_type(got, "offer_ended")
        )
        await dana_socket.disconnect()
        await lee_socket.disconnect()
        return other_offer, to_dana, to_lee

    with tasks_published():
        other_offer, to_dana, to_lee = async_to_sync(scenario)()

        assert statuses(dana, lee) == ["wrap_up", "busy"]
        (dana_call,) = of_type(to_dana, "call")
        assert (dana_call["call_id"], dana_call["state"]) == ("CA-T", "wrap_up")
        (lee_call,) = of_type(to_lee, "call")
        assert lee_call["call_id"] == "CA-T"
        assert lee_call["caller"]["customer"]["id"] == maya.id
        assert ContextAccess.objects.filter(customer=maya, user=lee.user, reason="call").exists()
        # Lee is on the transferred call: the caller ringing for them goes back to the queue.
        assert of_type(to_lee, "offer_ended")[0]["offer_id"] == other_offer.id
        other_offer.refresh_from_db()
        assert other_offer.state == OfferState.WITHDRAWN
        assert Call.objects.get(id=other_offer.call_id).state == CallState.QUEUED

        # Dana is free to end her wrap-up; the hang-up frees Lee.
        ready = as_user(dana.user).post(f"/api/agents/{dana.id}/ready/")
        assert ready.status_code == 200, ready.content
        send(phone_system, event("call.ended", "CA-T", at(120), reason="completed"))
    assert statuses(dana, lee) == ["available", "wrap_up"]


@pytest.mark.django_db
def test_a_transfer_to_an_agent_nobody_knows_is_kept_and_the_call_stays_with_its_agent(
    phone_system, queue, make_agent, caplog
):
    dana = make_agent("dana", extension="1001", status="available")

    send(
        phone_system,
        ringing("CA-U", at(0)),
        event("call.answered", "CA-U", at(5), agent="1001"),
        event("call.transferred", "CA-U", at(30), agent="9999"),
    )

    call = Call.objects.get(telephony_call_id="CA-U")
    assert (call.state, call.agent) == ("connected", dana)
    kept = CallEvent.objects.get(call=call, type="call.transferred")
    assert kept.applied is False and "does not know" in kept.outcome
    assert "9999" in caplog.text
    send(phone_system, event("call.ended", "CA-U", at(90), reason="completed"))
    assert statuses(dana) == ["wrap_up"]


@pytest.mark.django_db
def test_transfers_out_of_order_or_twice_never_put_an_agent_on_two_calls(
    phone_system, queue, make_agent
):
    dana = make_agent("dana", extension="1001", status="available")
    lee = make_agent("lee", extension="1002", status="available")
    sam = make_agent("sam", extension="1003", status="available")
    everyone = (dana, lee, sam)
    to_lee = event("call.transferred", "CA-O", at(20), agent="1002")

    send(phone_system, ringing("CA-O", at(0)), event("call.answered", "CA-O", at(5), agent="1001"))
    assert statuses(*everyone) == ["busy", "available", "available"]
    send(phone_system, to_lee, to_lee)  # the same transfer, delivered twice under two webhook ids
    assert statuses(*everyone) == ["wrap_up", "busy", "available"]
    # A hold, then a transfer to Sam that happened before the hold but arrives after it.
    send(
        phone_system,
        event("call.held", "CA-O", at(40)),
        event("call.transferred", "CA-O", at(30), agent="1003"),
    )
    assert statuses(*everyone) == ["wrap_up", "wrap_up", "busy"]
    # A stale transfer back to Lee, older than the one to Sam, changes nothing.
    send(phone_system, event("call.transferred", "CA-O", at(25), agent="1002"))
    assert statuses(*everyone) == ["wrap_up", "wrap_up", "busy"]
    assert Call.objects.get(telephony_call_id="CA-O").agent == sam
    assert [calls_in_hand(agent) for agent in everyone] == [0, 0, 1]

    send(phone_system, event("call.ended", "CA-O", at(90), reason="completed"))
    assert statuses(*everyone) == ["wrap_up", "wrap_up", "wrap_up"]
    assert [calls_in_hand(agent) for agent in everyone] == [0, 0, 0]


# --- never two calls ------------------------------------------------------------------------


@pytest.mark.django_db
def test_an_agent_the_telephony_system_connected_cannot_take_another_offer(
    phone_system, queue, make_agent
):
    dana = make_agent("dana", extension="1001", status="available")
    sam = make_agent("sam", extension="1003", status="offline")
    waiting = arrive(queue=queue, number="+14155550999", publish=False)
    router.route_call(waiting.id)
    offer = Offer.objects.get(call=waiting, state=OfferState.OFFERED, agent=dana)

    # A caller reaches Dana directly at the telephony system while the offer rings.
    send(phone_system, ringing("CA-D", at(0)), event("call.answered", "CA-D", at(5), agent="1001"))
    sam.status = AgentStatus.AVAILABLE
    sam.save()
    taken = as_user(dana.user).post(f"/api/offers/{offer.id}/accept/")

    assert taken.status_code == 409
    assert "offer_id" in taken.json()["errors"]
    offer.refresh_from_db()
    assert offer.state == OfferState.WITHDRAWN
    waiting.refresh_from_db()
    assert (waiting.state, waiting.agent) == ("queued", None)
    assert statuses(dana) == ["busy"]
    router.route_call(waiting.id)
    assert Offer.objects.get(call=waiting, state=OfferState.OFFERED).agent == sam


@pytest.mark.django_db
def test_an_offer_that_still_rings_for_an_agent_on_a_call_is_refused_and_withdrawn(
    queue, make_agent
):
    """The offer was made while the agent's new call was locked (another router held it): the
    accept is refused and the offer taken back, and the sweeper takes back any left ringing."""
    dana = make_agent("dana", extension="1001", status="available")
    first = arrive(queue=queue, publish=False)
    router.route_call(first.id)
    accepted = as_user(dana.user).post(f"/api/offers/{Offer.objects.get(call=first).id}/accept/")
    assert accepted.status_code == 200, accepted.content
    late_calls = [arrive(queue=queue, number=f"+1415555099{n}", publish=False) for n in (1, 2)]
    Call.objects.filter(id__in=[call.id for call in late_calls]).update(state=CallState.OFFERED)

    def rings_for_dana(call: Call) -> Offer:
        return Offer.objects.create(
            call=call, agent=dana, expires_at=timezone.now() + timedelta(seconds=30)
        )

    late = rings_for_dana(late_calls[0])
    refused = as_user(dana.user).post(f"/api/offers/{late.id}/accept/")

    assert refused.status_code == 409
    assert refused.json()["errors"] == {
        "offer_id": ["You are already on a call; that offer was passed on."]
    }
    late.refresh_from_db()
    assert late.state == OfferState.WITHDRAWN
    assert RoutingDecision.objects.filter(
        call=late_calls[0], reason="agent_on_another_call"
    ).exists()
    left_ringing = rings_for_dana(late_calls[1])
    router.sweep()
    left_ringing.refresh_from_db()
    assert left_ringing.state == OfferState.WITHDRAWN
    assert Call.objects.get(id=late_calls[1].id).state == CallState.QUEUED


# --- a call being connected stays with its agent --------------------------------------------


@pytest.fixture
def accepted_call(queue, make_agent, settings):
    """Dana accepted a caller; the telephony system is connecting them (push configured)."""
    settings.TELEPHONY_CONTROL_URL = "http://127.0.0.1:9/control"
    make_agent("dana", extension="1001", status="available")
    make_agent("sam", extension="1003", status="available")
    call = arrive(queue=queue, publish=False)
    router.route_call(call.id)
    offer = Offer.objects.get(call=call, state=OfferState.OFFERED)
    response = as_user(offer.agent.user).post(f"/api/offers/{offer.id}/accept/")
    assert response.status_code == 200, response.content
    return Call.objects.get(id=call.id), Agent.objects.get(id=offer.agent_id)


@pytest.mark.django_db
def test_a_supervisor_cannot_move_a_call_an_agent_accepted(
    accepted_call, supervisor, django_capture_on_commit_callbacks
):
    call, agent = accepted_call
    Queue.objects.create(slug="vip", name="VIP")

    with tasks_published() as published, django_capture_on_commit_callbacks(execute=True):
        moved = as_user(supervisor).post(
            f"/api/supervisor/calls/{call.telephony_call_id}/move/", {"queue": "vip"}, format="json"
        )

    assert moved.status_code == 409
    assert "call_id" in moved.json()["errors"]
    assert published == []  # neither routed again nor a second call.connect
    call.refresh_from_db()
    assert (call.queue.slug, call.agent) == ("loyalty", agent)


@pytest.mark.django_db
def test_a_supervisor_cannot_release_an_agent_whose_accepted_call_is_being_connected(
    accepted_call, supervisor, django_capture_on_commit_callbacks
):
    call, agent = accepted_call

    with tasks_published() as published, django_capture_on_commit_callbacks(execute=True):
        released = as_user(supervisor).post(
            f"/api/supervisor/agents/{agent.id}/status/", {"status": "available"}, format="json"
        )

    assert released.status_code == 409
    assert "status" in released.json()["errors"]
    assert published == []
    assert statuses(agent) == ["busy"]


# --- every caller shown is recorded ---------------------------------------------------------


@pytest.mark.django_db
def test_the_answering_agent_is_shown_the_caller_on_answer_and_at_wrap_up_and_both_are_audited(
    phone_system, queue, make_agent, maya
):
    dana = make_agent("dana", extension="1001", status="available")

    send(phone_system, ringing("CA-A", at(0)), event("call.answered", "CA-A", at(5), agent="1001"))
    call = Call.objects.get(telephony_call_id="CA-A")
    # The router offered Dana the call (the screen-pop), then she answered it.
    shown = ContextAccess.objects.filter(customer=maya, user=dana.user).order_by("id")
    assert [(row.reason, row.call_id) for row in shown] == [("offer", call.id), ("call", call.id)]

    send(phone_system, event("call.ended", "CA-A", at(60), reason="completed"))

    assert [(row.reason, row.call_id) for row in shown.filter(reason="call")] == [
        ("call", call.id)
    ] * 2


@pytest.mark.django_db
def test_an_agent_who_accepted_but_was_not_connected_is_not_shown_the_caller_again(
    phone_system, queue, make_agent, maya
):
    dana = make_agent("dana", extension="1001", status="available")
    lee = make_agent("lee", extension="1002", status="offline")
    call = arrive(queue=queue, customer=maya, publish=False)
    router.route_call(call.id)
    offer = Offer.objects.get(call=call, agent=dana)
    assert as_user(dana.user).post(f"/api/offers/{offer.id}/accept/").status_code == 200
    seen_by_dana = ContextAccess.objects.filter(user=dana.user).count()

    send(
        phone_system,
        event("call.answered", call.telephony_call_id, at(5), agent="1002"),
        event("call.ended", call.telephony_call_id, at(60), reason="completed"),
    )

    assert ContextAccess.objects.filter(user=dana.user).count() == seen_by_dana
    assert ContextAccess.objects.filter(user=lee.user, reason="call").count() == 2
    assert statuses(dana, lee) == ["available", "wrap_up"]
