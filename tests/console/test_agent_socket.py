"""`/ws/agent/` over the real Redis channel layer: the state first (a reconnect heals), offers as
they are made, and the agent's own actions: accept, decline, set_status, ready."""

import asyncio

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import User
from django.utils import timezone

from customers.models import ContextAccess
from infrastructure import broadcast
from rapport.asgi import application
from routing import router, unseen_offers
from routing.models import Agent, Offer
from routing.states import AgentStatus, OfferState
from tests.support.routing import arrive, tasks_published
from tests.support.sockets import fresh_channel_layer, socket_headers  # noqa: F401 (fixture)

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(60),
    pytest.mark.usefixtures("fast_logins"),
]


def socket_for(headers: list[tuple[bytes, bytes]]) -> WebsocketCommunicator:
    return WebsocketCommunicator(application, "/ws/agent/", headers=headers)


async def next_message(socket: WebsocketCommunicator, kind: str) -> dict:
    """The next message of type `kind`, skipping others (status changes come along)."""
    for _ in range(10):
        message = await socket.receive_json_from(timeout=5)
        if message["type"] == kind:
            return message
    raise AssertionError(f"no {kind!r} message")


@pytest.fixture
def dana(make_agent):
    return make_agent("dana", status="available")


def ring(queue) -> Offer:
    call = arrive(queue=queue, number="+14155550123", publish=False)
    router.route_call(call.id)
    return Offer.objects.get(call=call, state=OfferState.OFFERED)


def test_it_refuses_a_socket_without_a_logged_in_agent(db, make_agent):
    supervisor = User.objects.create_user("morgan")

    async def connect(headers):
        socket = socket_for(headers)
        connected, _ = await socket.connect()
        await socket.disconnect()
        return connected

    assert async_to_sync(connect)(socket_headers(None)) is False
    assert async_to_sync(connect)(socket_headers(supervisor)) is False


def test_the_first_message_carries_the_ringing_offer_so_a_reconnect_heals(dana, queue):
    offer = ring(queue)

    headers = socket_headers(dana.user)

    async def scenario():
        socket = socket_for(headers)
        connected, _ = await socket.connect()
        assert connected
        state = await socket.receive_json_from(timeout=5)
        await socket.disconnect()
        return state

    state = async_to_sync(scenario)()

    assert state["type"] == "state"
    assert state["agent"]["status"] == "available"
    assert state["agent"]["queues"] == ["loyalty"]
    assert state["offer"]["offer_id"] == offer.id
    assert state["offer"]["call_id"] == offer.call.telephony_call_id
    assert state["offer"]["reason"] == "longest_idle"
    assert state["offer"]["caller"]["number"] == "+14155550123"
    assert state["call"] is None


def test_a_reconnect_that_shows_the_caller_again_is_audited(dana, queue, make_customer):
    maya = make_customer("Maya Chen", phones=["+14155550123"])
    call = arrive(queue=queue, customer=maya, publish=False)
    router.route_call(call.id)
    offer = Offer.objects.get(call=call, state=OfferState.OFFERED)
    popped = ContextAccess.objects.filter(customer=maya, user=dana.user).count()
    headers = socket_headers(dana.user)

    async def reconnect():
        socket = socket_for(headers)
        await socket.connect()
        state = await socket.receive_json_from(timeout=5)
        await socket.disconnect()
        return state

    state = async_to_sync(reconnect)()

    assert state["offer"]["caller"]["customer"]["id"] == maya.id
    again = ContextAccess.objects.filter(customer=maya, user=dana.user).order_by("-id")
    assert again.count() == popped + 1
    assert (again[0].reason, again[0].call_id) == ("offer", offer.call_id)


def test_an_offer_arrives_and_accepting_it_makes_the_agent_busy(dana, queue):
    headers = socket_headers(dana.user)

    async def scenario():
        socket = socket_for(headers)
        await socket.connect()
        await next_message(socket, "state")
        offer = await database_sync_to_async(ring)(queue)
        message = await next_message(socket, "offer")
        await socket.send_json_to({"type": "accept", "offer_id": message["offer_id"]})
        ended = await next_message(socket, "offer_ended")
        status = await next_message(socket, "status")
        await socket.disconnect()
        return offer, message, ended, status

    offer, message, ended, status = async_to_sync(scenario)()

    assert message["offer_id"] == offer.id
    assert message["queue"] == {"slug": "loyalty", "name": "Loyalty"}
    assert message["timeout_seconds"] == queue.offer_timeout_seconds
    assert set(message) >= {"offered_at", "expires_at", "reason", "caller", "call_id"}
    assert ended == {
        "type": "offer_ended",
        "offer_id": offer.id,
        "call_id": offer.call.telephony_call_id,
        "outcome": "accepted",
    }
    assert (status["status"], status["reason"]) == ("busy", "offer_accepted")
    offer.refresh_from_db()
    assert offer.state == OfferState.ACCEPTED
    assert offer.call.__class__.objects.get(id=offer.call_id).agent_id == dana.id


def test_accepting_on_the_socket_tells_the_telephony_system_whom_to_connect(dana, queue, settings):
    settings.TELEPHONY_CONTROL_URL = "http://pbx.invalid/control"
    headers = socket_headers(dana.user)

    async def scenario():
        socket = socket_for(headers)
        await socket.connect()
        await next_message(socket, "state")
        offer = await database_sync_to_async(ring)(queue)
        await next_message(socket, "offer")
        await socket.send_json_to({"type": "accept", "offer_id": offer.id})
        await next_message(socket, "offer_ended")
        await socket.disconnect()
        return offer

    with tasks_published() as published:
        offer = async_to_sync(scenario)()

    decision = offer.decision
    assert ("telephony.push_call_connect", (offer.call_id, decision.id)) in published


def test_declining_on_the_socket_puts_the_call_back_in_the_queue(dana, queue):
    headers = socket_headers(dana.user)

    async def scenario():
        socket = socket_for(headers)
        await socket.connect()
        await next_message(socket, "state")
        offer = await database_sync_to_async(ring)(queue)
        await socket.send_json_to({"type": "decline", "offer_id": offer.id})
        ended = await next_message(socket, "offer_ended")
        await socket.disconnect()
        return offer, ended

    offer, ended = async_to_sync(scenario)()

    assert ended["outcome"] == "declined"
    offer.call.refresh_from_db()
    assert offer.call.state == "queued"
    assert list(offer.call.decisions.values_list("reason", flat=True)) == [
        "longest_idle",
        "offer_declined",
    ]


def test_an_agent_sets_their_status_and_ends_wrap_up_with_ready(dana):
    headers = socket_headers(dana.user)

    async def scenario():
        socket = socket_for(headers)
        await socket.connect()
        await next_message(socket, "state")
        await socket.send_json_to({"type": "set_status", "status": "break"})
        on_break = await next_message(socket, "status")
        await database_sync_to_async(Agent.objects.filter(id=dana.id).update)(
            status=AgentStatus.WRAP_UP
        )
        await socket.send_json_to({"type": "ready"})
        ready = await next_message(socket, "status")
        await socket.disconnect()
        return on_break, ready

    on_break, ready = async_to_sync(scenario)()

    assert (on_break["status"], on_break["reason"]) == ("break", "set_by_agent")
    assert (ready["status"], ready["reason"]) == ("available", "ready")
    assert dana.status_changes.count() == 2


def test_it_answers_a_stale_or_malformed_action_with_an_error(dana, queue):
    offer = ring(queue)
    Offer.objects.filter(id=offer.id).update(state=OfferState.WITHDRAWN)

    headers = socket_headers(dana.user)

    async def scenario():
        socket = socket_for(headers)
        await socket.connect()
        await next_message(socket, "state")
        replies = []
        for action in (
            {"type": "accept", "offer_id": offer.id},
            {"type": "accept", "offer_id": "seventeen"},
            {"type": "set_status", "status": "busy"},
            {"type": "dance"},
        ):
            await socket.send_json_to(action)
            replies.append(await next_message(socket, "error"))
        await socket.disconnect()
        return replies

    replies = async_to_sync(scenario)()

    assert replies[0] == {
        "type": "error",
        "message": "That offer is no longer ringing.",
        "field": "offer_id",
    }
    assert [reply["type"] for reply in replies] == ["error"] * 4


def test_hundreds_of_sockets_leaving_at_once_wait_for_a_connection_instead_of_failing():
    """A deploy or a network blip closes every agent's socket together: each one's
    `group_discard` needs a Redis connection at the same moment, more than the pool holds."""

    async def scenario():
        layer = get_channel_layer()
        names = [await layer.new_channel() for _ in range(300)]
        await asyncio.gather(*(layer.group_add("burst", name) for name in names))
        return await asyncio.gather(
            *(layer.group_discard("burst", name) for name in names), return_exceptions=True
        )

    results = async_to_sync(scenario)()

    assert [result for result in results if isinstance(result, Exception)] == []


def test_a_socket_that_never_showed_a_ringing_offer_heals_from_the_state(dana, queue, monkeypatch):
    """The worker that made the offer was killed before its message went out: the sweep asks
    the agent's socket, which sends the state with the ringing offer, as a reconnect would."""
    headers = socket_headers(dana.user)

    def ring_with_its_message_lost():
        with monkeypatch.context() as lost:
            lost.setattr(broadcast, "send_to_agent", lambda agent_id, message: None)
            return ring(queue)

    async def scenario():
        socket = socket_for(headers)
        await socket.connect()
        await next_message(socket, "state")
        offer = await database_sync_to_async(ring_with_its_message_lost)()
        assert await socket.receive_nothing(timeout=0.3)
        later = timezone.now() + unseen_offers.ASK_AFTER
        asked = await database_sync_to_async(unseen_offers.ask_screens_about_ringing_offers)(
            now=later
        )
        healed = await next_message(socket, "state")
        again = await database_sync_to_async(unseen_offers.ask_screens_about_ringing_offers)(
            now=later
        )
        quiet = await socket.receive_nothing(timeout=0.5)
        await socket.disconnect()
        return offer, asked, healed, again, quiet

    offer, asked, healed, again, quiet = async_to_sync(scenario)()

    assert asked == 1
    assert healed["offer"]["offer_id"] == offer.id
    assert again == 0
    assert quiet


def test_a_socket_that_showed_the_offer_is_asked_and_stays_quiet(dana, queue):
    headers = socket_headers(dana.user)

    async def scenario():
        socket = socket_for(headers)
        await socket.connect()
        await next_message(socket, "state")
        offer = await database_sync_to_async(ring)(queue)
        shown = await next_message(socket, "offer")
        asked = await database_sync_to_async(unseen_offers.ask_screens_about_ringing_offers)(
            now=timezone.now() + unseen_offers.ASK_AFTER
        )
        quiet = await socket.receive_nothing(timeout=0.5)
        await socket.disconnect()
        return offer, shown, asked, quiet

    offer, shown, asked, quiet = async_to_sync(scenario)()

    assert shown["offer_id"] == offer.id
    assert asked == 1
    assert quiet
