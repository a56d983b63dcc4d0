"""An agent who hands a caller to a colleague wraps up that call, not an older one (issue 26,
point 7): her reconnecting console shows the caller she just handed on, never the customer of
her previous call, and the wrap-up lasts as long as the queue of the call she handed on allows.

The phone system's events are signed and applied by the worker's task; her console is a real
socket with her session; the wrap-up limit is enforced by a real worker's sweeper."""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator

from customers.models import ContextAccess
from rapport.asgi import application
from routing.models import Agent, AgentStatusChange, Call, Queue
from routing.states import AgentStatus, CallState
from tests.support.people import Person
from tests.support.routing import past_call, running_workers, wait_until
from tests.support.sockets import fresh_channel_layer  # noqa: F401 (fixture)
from tests.support.telephony import at, event, ringing, send

pytestmark = [pytest.mark.timeout(120), pytest.mark.usefixtures("fast_logins")]

MAYA_NUMBER = "+14155550123"
LEO_NUMBER = "+14155550999"


@pytest.fixture
def floor(queue, make_agent, make_customer):
    """Dana spoke with Leo on the VIP line an hour ago (a long wrap-up there); Maya calls the
    Loyalty line now (a short one)."""
    vip = Queue.objects.create(
        slug="vip", name="VIP", numbers=["+18005550199"], wrap_up_seconds=3600
    )
    queue.wrap_up_seconds = 1
    queue.save(update_fields=["wrap_up_seconds"])
    dana = make_agent("dana", extension="1001", status="available", queues=[queue, vip])
    make_agent("lee", extension="1002", status="offline")
    leo = make_customer("Leo Chen", phones=[LEO_NUMBER], consent="open")
    maya = make_customer("Maya Chen", phones=[MAYA_NUMBER], consent="open")
    past_call(customer=leo, agent=dana, queue=vip, days_ago=1 / 24)
    return dana, leo, maya


def dana_hands_maya_to_lee(phone_system) -> Call:
    send(
        phone_system,
        ringing("CA-T", at(0), **{"from": MAYA_NUMBER}),
        event("call.answered", "CA-T", at(5), agent="1001"),
        event("call.transferred", "CA-T", at(60), agent="1002"),
    )
    return Call.objects.get(telephony_call_id="CA-T")


@pytest.mark.django_db(transaction=True)
def test_a_reconnecting_console_shows_the_call_she_handed_on_not_her_previous_caller(
    phone_system, floor
):
    dana, leo, maya = floor
    call = dana_hands_maya_to_lee(phone_system)
    assert Agent.objects.get(id=dana.id).status == AgentStatus.WRAP_UP
    person = Person(dana.user)

    async def reconnect() -> dict:
        socket = WebsocketCommunicator(application, "/ws/agent/", headers=person.socket_headers)
        connected, _ = await socket.connect()
        assert connected
        state = await socket.receive_json_from(timeout=10)
        await socket.disconnect()
        return state

    state = async_to_sync(reconnect)()

    assert state["agent"]["status"] == AgentStatus.WRAP_UP
    assert (state["call"]["call_id"], state["call"]["state"]) == ("CA-T", CallState.WRAP_UP)
    assert state["call"]["caller"]["customer"]["name"] == "Maya Chen"
    assert not ContextAccess.objects.filter(customer=leo).exists()
    reconnect_seen = ContextAccess.objects.filter(user=dana.user).order_by("id").last()
    assert (reconnect_seen.customer_id, reconnect_seen.reason, reconnect_seen.call_id) == (
        maya.id,
        "call",
        call.id,
    )


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_her_wrap_up_ends_at_the_limit_of_the_queue_of_the_call_she_handed_on(
    phone_system, floor, tmp_path
):
    dana, _, _ = floor
    dana_hands_maya_to_lee(phone_system)
    assert Agent.objects.get(id=dana.id).status == AgentStatus.WRAP_UP

    with running_workers(tmp_path):

        def dana_available() -> bool:
            """Dana is available again"""
            return Agent.objects.get(id=dana.id).status == AgentStatus.AVAILABLE

        wait_until(dana_available, timeout=20, every=0.2)

    ended = AgentStatusChange.objects.filter(agent=dana).first()
    assert (ended.previous_status, ended.status, ended.reason) == (
        AgentStatus.WRAP_UP,
        AgentStatus.AVAILABLE,
        "wrap_up_limit",
    )
