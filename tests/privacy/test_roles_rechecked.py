"""Roles change mid-shift (issue 26, point 9): a person taken out of the `agent` group (or
deactivated) is offered no more calls and their console is closed before it shows another
caller; a supervisor taken out of the `supervisor` group gets no more named callers on the
open wall, which closes. The role is read again with the session, in the same statement.

The phone system's events are signed and applied by the worker's task; consoles and the wall
are real sockets over the Redis channel layer."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import Group, User

from console.consumers import CUSTOMER_DATA_MESSAGES
from customers.models import ContextAccess
from rapport.asgi import application
from routing.models import Call, Offer, RoutingDecision
from routing.states import AgentStatus, OfferState
from tests.support.people import Person, request_connections_closed  # noqa: F401 (fixture)
from tests.support.routing import past_call
from tests.support.sockets import fresh_channel_layer  # noqa: F401 (fixture)
from tests.support.telephony import at, event, ringing, send

pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.usefixtures("fast_logins", "request_connections_closed"),
]

NUMBER = "+14155550123"


def out_of_the_group(name: str) -> Callable[[User], None]:
    def change(user: User) -> None:
        user.groups.remove(Group.objects.get(name=name))

    return change


def deactivated(user: User) -> None:
    User.objects.filter(id=user.id).update(is_active=False)


NO_LONGER_AN_AGENT = {
    "taken out of the agent group": out_of_the_group("agent"),
    "deactivated": deactivated,
}


async def everything_until_closed(socket: WebsocketCommunicator) -> tuple[list[dict], int]:
    """What the socket was sent, then the code it was closed with."""
    sent = []
    while True:
        output = await socket.receive_output(timeout=10)
        if output["type"] == "websocket.close":
            return sent, output["code"]
        sent.append(json.loads(output["text"]))


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("change", list(NO_LONGER_AN_AGENT))
def test_no_longer_an_agent_she_is_offered_no_call_and_her_console_closes_before_any_caller(
    phone_system, queue, make_agent, make_customer, change
):
    dana = make_agent("dana", extension="1001", status="available")
    make_customer("Maya Chen", phones=[NUMBER], consent="open")
    person = Person(dana.user)

    async def scenario():
        socket = WebsocketCommunicator(application, "/ws/agent/", headers=person.socket_headers)
        connected, _ = await socket.connect()
        assert connected
        assert (await socket.receive_json_from(timeout=5))["type"] == "state"
        await database_sync_to_async(NO_LONGER_AN_AGENT[change])(dana.user)
        await database_sync_to_async(send)(phone_system, ringing("CA-R", at(0)))
        assert await socket.receive_nothing(timeout=0.5)
        # The phone system does not know: it connects the caller to her phone all the same.
        await database_sync_to_async(send)(
            phone_system, event("call.answered", "CA-R", at(5), agent="1001")
        )
        return await everything_until_closed(socket)

    sent, code = async_to_sync(scenario)()

    assert code == 4403
    assert not [message for message in sent if message["type"] in CUSTOMER_DATA_MESSAGES]
    assert not Offer.objects.filter(agent=dana).exists()
    call = Call.objects.get(telephony_call_id="CA-R")
    assert [decision.reason for decision in call.decisions.order_by("id")][0] == (
        "no_agent_waiting"
    )
    assert not ContextAccess.objects.filter(user=dana.user, reason="offer").exists()


@pytest.mark.django_db(transaction=True)
def test_an_offer_that_rang_before_she_left_the_agent_group_cannot_be_taken(
    phone_system, queue, make_agent, make_customer
):
    dana = make_agent("dana", extension="1001", status="available")
    make_customer("Maya Chen", phones=[NUMBER], consent="open")
    person = Person(dana.user)

    async def scenario():
        socket = WebsocketCommunicator(application, "/ws/agent/", headers=person.socket_headers)
        connected, _ = await socket.connect()
        assert connected
        assert (await socket.receive_json_from(timeout=5))["type"] == "state"
        await database_sync_to_async(send)(phone_system, ringing("CA-O", at(0)))
        offer = await socket.receive_json_from(timeout=5)
        assert offer["type"] == "offer"
        await database_sync_to_async(out_of_the_group("agent"))(dana.user)
        await socket.send_json_to({"type": "accept", "offer_id": offer["offer_id"]})
        return offer, await everything_until_closed(socket)

    offer, (sent, code) = async_to_sync(scenario)()

    assert (sent, code) == ([], 4403)
    assert Offer.objects.get(id=offer["offer_id"]).state == OfferState.OFFERED
    assert Call.objects.get(telephony_call_id="CA-O").agent_id is None
    assert person.post(f"/api/offers/{offer['offer_id']}/accept/").status_code == 403


@pytest.mark.django_db(transaction=True)
def test_a_last_agent_no_longer_in_the_agent_group_is_passed_over(
    phone_system, queue, make_agent, make_customer
):
    dana = make_agent("dana", extension="1001", status="available")
    sam = make_agent("sam", extension="1002", status="available")
    maya = make_customer("Maya Chen", phones=[NUMBER], consent="open")
    past_call(customer=maya, agent=dana, queue=queue)
    out_of_the_group("agent")(dana.user)

    send(phone_system, ringing("CA-L", at(0)))

    decisions = RoutingDecision.objects.filter(call__telephony_call_id="CA-L").order_by("id")
    assert [(d.reason, d.agent_id, d.detail.get("why")) for d in decisions] == [
        ("last_agent_unavailable", dana.id, "not_an_agent"),
        ("longest_idle", sam.id, None),
    ]
    assert Offer.objects.get(call__telephony_call_id="CA-L").agent_id == sam.id


@pytest.mark.django_db(transaction=True)
def test_a_person_outside_the_agent_group_cannot_open_a_console_or_take_an_offer(queue, make_agent):
    dana = make_agent("dana", status="available")
    out_of_the_group("agent")(dana.user)
    person = Person(dana.user)

    async def connect():
        socket = WebsocketCommunicator(application, "/ws/agent/", headers=person.socket_headers)
        connected, code = await socket.connect()
        return connected, code

    assert async_to_sync(connect)() == (False, 4403)
    assert person.post("/api/offers/1/accept/").status_code == 403


@pytest.mark.django_db(transaction=True)
def test_a_supervisor_taken_out_of_the_group_gets_no_more_named_callers_and_the_wall_closes(
    phone_system, queue, make_agent, make_customer
):
    make_agent("dana", extension="1001", status="offline")
    make_customer("Maya Chen", phones=[NUMBER], consent="open")
    morgan = User.objects.create_user("morgan")
    morgan.groups.add(Group.objects.get_or_create(name="supervisor")[0])
    person = Person(morgan)

    async def scenario():
        socket = WebsocketCommunicator(
            application, "/ws/supervisor/", headers=person.socket_headers
        )
        connected, _ = await socket.connect()
        assert connected
        assert (await socket.receive_json_from(timeout=5))["type"] == "snapshot"
        await database_sync_to_async(out_of_the_group("supervisor"))(morgan)
        # Maya is put through to Dana: the wall would name her.
        await database_sync_to_async(send)(
            phone_system,
            ringing("CA-W", at(0)),
            event("call.answered", "CA-W", at(5), agent="1001"),
        )
        return await everything_until_closed(socket)

    sent, code = async_to_sync(scenario)()

    assert code == 4403
    assert sent == []
    assert "Maya" not in str(sent)
    assert not ContextAccess.objects.filter(user=morgan).exists()
    assert Call.objects.get(telephony_call_id="CA-W").agent.status == AgentStatus.BUSY
