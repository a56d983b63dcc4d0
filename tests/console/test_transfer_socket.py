"""Transfer from the console (docs/console.md, "Transfer"): Dana, on a call, hands it to Lee with
a one-line note over her socket; Lee's offer shows the note; his accept tells the phone system
(a signed `call.transfer`, verified with `standardwebhooks`); a declined or unanswered hand-off
leaves the caller with Dana, who is told. Real sockets through the ASGI application on the real
Redis channel layer, and a real Celery worker (with beat: its sweeper rings offers out) pushing
to a real HTTP server playing the phone system. Hang-up and hold from the console too."""

from __future__ import annotations

import asyncio
import json
import os
import threading
from http.server import ThreadingHTTPServer

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator
from standardwebhooks.webhooks import Webhook

from console import services as console_services
from customers.models import AccessReason, CallNote, ContextAccess
from rapport.asgi import application
from routing import offers, transfers
from routing.models import Agent, Call, Offer
from routing.states import AgentStatus, CallState
from telephony.signing import sign
from tests.support.routing import (
    answer,
    arrive,
    celery_queue,
    database_url_for_workers,
    solo_worker,
    wait_until,
)
from tests.support.sockets import fresh_channel_layer, socket_headers  # noqa: F401 (fixture)
from tests.support.telephony import (
    EVENTS_URL,
    TelephonyControl,
    event,
    new_secret,
    request_application,
)

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(120),
    pytest.mark.usefixtures("fast_logins", "on_the_workers_queue"),
]

SECRET = new_secret()
QUEUE = f"transfer-tests-{os.getpid()}"
NOTE = "exchange for the trail shoes, size 9 too small — label already sent"


@pytest.fixture(scope="module")
def control_url():
    server = ThreadingHTTPServer(("127.0.0.1", 0), TelephonyControl)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/control"
    server.shutdown()


@pytest.fixture(scope="module")
def worker(django_db_setup, django_db_blocker, control_url, tmp_path_factory):
    """`celery worker -B` on the test database: pushes instructions, sweeps offers that rang
    out, applies the phone system's events."""
    with django_db_blocker.unblock():
        database_url = database_url_for_workers()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "CELERY_QUEUE": QUEUE,
        "TELEPHONY_WEBHOOK_SECRET": SECRET,
        "TELEPHONY_CONTROL_URL": control_url,
        "TELEPHONY_CONNECT_RETRY_SECONDS": "0.2",
        "TELEPHONY_CONNECT_TIMEOUT_SECONDS": "1",
    }
    with solo_worker(env, tmp_path_factory.mktemp("worker"), beat=True) as process:
        yield process


@pytest.fixture
def on_the_workers_queue(worker, control_url, settings):
    settings.TELEPHONY_WEBHOOK_SECRET = [SECRET]
    settings.TELEPHONY_CONTROL_URL = control_url
    TelephonyControl.script, TelephonyControl.received = [], []
    with celery_queue(QUEUE):
        yield


@pytest.fixture
def dana_on_a_call(queue, make_agent, make_customer):
    """Dana talks to Maya; Lee, in the same queue, is free."""
    dana = make_agent("dana", extension="1001", status="available")
    maya = make_customer("Maya Chen")
    call = arrive(queue=queue, customer=maya, publish=False)
    call = answer(call, dana)
    lee = make_agent("lee", extension="1002", status="available")
    return dana, lee, call


async def opened(headers: list[tuple[bytes, bytes]]) -> WebsocketCommunicator:
    """An agent's socket (`headers`: theirs, from `socket_headers`), its first message read."""
    socket = WebsocketCommunicator(application, "/ws/agent/", headers=headers)
    connected, _ = await socket.connect()
    assert connected
    assert (await socket.receive_json_from(timeout=5))["type"] == "state"
    return socket


async def next_message(socket: WebsocketCommunicator, kind: str, timeout: float = 10) -> dict:
    """The next message of type `kind`, skipping others."""
    for _ in range(20):
        message = await socket.receive_json_from(timeout=timeout)
        if message["type"] == kind:
            return message
    raise AssertionError(f"no {kind!r} message")


async def ask_to_transfer(socket: WebsocketCommunicator, call: Call, *, to: Agent) -> None:
    """The agent on `call` hands it to `to` with the usual note."""
    await socket.send_json_to(
        {"type": "transfer", "call_id": call.telephony_call_id, "to_agent": to.id, "note": NOTE}
    )


def pushed(kind: str) -> list[tuple[dict, bytes]]:
    return [
        (headers, body)
        for headers, body in TelephonyControl.received
        if json.loads(body)["type"] == kind
    ]


def phone_reports(payload: dict) -> None:
    """The phone system posts a signed event; the worker applies it."""
    body = json.dumps(payload)
    response = request_application(
        "POST", EVENTS_URL, body, {"content-type": "application/json", **sign(body=body)}
    )
    assert response.status_code == 202, response.content


def status_of(agent: Agent) -> str:
    return Agent.objects.get(id=agent.id).status


def test_an_accepted_hand_off_tells_the_phone_system_and_dana_wraps_up_once_it_moved_the_caller(
    dana_on_a_call,
):
    dana, lee, call = dana_on_a_call

    dana_headers = socket_headers(dana.user)
    lee_headers = socket_headers(lee.user)

    async def scenario():
        dana_socket, lee_socket = await opened(dana_headers), await opened(lee_headers)
        await ask_to_transfer(dana_socket, call, to=lee)
        offer = await next_message(lee_socket, "offer")
        ringing = await next_message(dana_socket, "transfer")
        await lee_socket.send_json_to({"type": "accept", "offer_id": offer["offer_id"]})
        accepted = await next_message(dana_socket, "transfer")
        await dana_socket.disconnect()
        await lee_socket.disconnect()
        return offer, ringing, accepted

    offer, ringing, accepted = async_to_sync(scenario)()

    assert offer["handoff"] == {"from_agent": {"id": dana.id, "display_name": "Dana"}, "note": NOTE}
    assert offer["caller"]["customer"]["name"] == "Maya Chen"
    assert (ringing["state"], ringing["to_agent"]["display_name"]) == ("offered", "Lee")
    assert accepted["state"] == "accepted"
    headers, body = wait_until(lambda: pushed("call.transfer"), timeout=15)[0]
    Webhook(SECRET).verify(body, headers)
    assert json.loads(body) == {
        "type": "call.transfer",
        "call_id": call.telephony_call_id,
        "agent": "1002",
        "from_agent": "1001",
        "decision_id": Offer.objects.get(id=offer["offer_id"]).decision.id,
    }
    # Until the phone system moves the caller, Dana is on the call and Lee is kept for it.
    assert Call.objects.get(id=call.id).agent_id == dana.id
    assert (status_of(dana), status_of(lee)) == (AgentStatus.BUSY, AgentStatus.BUSY)

    phone_reports(event("call.transferred", call.telephony_call_id, agent="1002"))

    wait_until(lambda: Call.objects.get(id=call.id).agent_id == lee.id, timeout=15)
    assert Call.objects.get(id=call.id).state == CallState.TRANSFERRED
    assert (status_of(dana), status_of(lee)) == (AgentStatus.WRAP_UP, AgentStatus.BUSY)
    assert Agent.objects.get(id=dana.id).wrap_up_call_id == call.id
    note = CallNote.objects.get(customer=call.customer, call_id=call.id)
    assert note.text == f"Hand-off from Dana to Lee: {NOTE}"
    assert note.author == dana.user
    # Lee's look at Maya's card came with the offer, and is in the access log.
    assert ContextAccess.objects.filter(
        user=lee.user, customer=call.customer, reason=AccessReason.OFFER
    ).exists()


def test_a_declined_hand_off_leaves_the_caller_with_dana_who_is_told(dana_on_a_call):
    dana, lee, call = dana_on_a_call

    dana_headers = socket_headers(dana.user)
    lee_headers = socket_headers(lee.user)

    async def scenario():
        dana_socket, lee_socket = await opened(dana_headers), await opened(lee_headers)
        await ask_to_transfer(dana_socket, call, to=lee)
        offer = await next_message(lee_socket, "offer")
        await next_message(dana_socket, "transfer")
        await lee_socket.send_json_to({"type": "decline", "offer_id": offer["offer_id"]})
        told = await next_message(dana_socket, "transfer")
        await dana_socket.disconnect()
        await lee_socket.disconnect()
        return told

    told = async_to_sync(scenario)()

    assert (told["state"], told["to_agent"]["display_name"]) == ("declined", "Lee")
    call.refresh_from_db()
    assert (call.state, call.agent_id) == (CallState.CONNECTED, dana.id)
    # Declining is no missed call: Lee stays available.
    assert (status_of(dana), status_of(lee)) == (AgentStatus.BUSY, AgentStatus.AVAILABLE)
    assert not pushed("call.transfer")
    assert not CallNote.objects.filter(call_id=call.id).exists()


def test_an_unanswered_hand_off_rings_out_and_leaves_the_caller_with_dana(dana_on_a_call, queue):
    dana, lee, call = dana_on_a_call
    queue.offer_timeout_seconds = 1
    queue.save(update_fields=["offer_timeout_seconds"])

    dana_headers = socket_headers(dana.user)
    lee_headers = socket_headers(lee.user)

    async def scenario():
        dana_socket, lee_socket = await opened(dana_headers), await opened(lee_headers)
        await ask_to_transfer(dana_socket, call, to=lee)
        await next_message(lee_socket, "offer")
        await next_message(dana_socket, "transfer")
        # Nobody answers: the worker's sweeper takes the offer back.
        told = await next_message(dana_socket, "transfer", timeout=15)
        ended = await next_message(lee_socket, "offer_ended")
        await dana_socket.disconnect()
        await lee_socket.disconnect()
        return told, ended

    told, ended = async_to_sync(scenario)()

    assert told["state"] == ended["outcome"] == "timed_out"
    call.refresh_from_db()
    assert (call.state, call.agent_id) == (CallState.CONNECTED, dana.id)
    # A hand-off left to ring out is a missed call like any other: Lee is made not ready.
    assert (status_of(dana), status_of(lee)) == (AgentStatus.BUSY, AgentStatus.BREAK)


def test_a_hand_off_to_a_queue_rings_its_next_free_agent(dana_on_a_call, queue):
    dana, lee, call = dana_on_a_call
    dana_headers = socket_headers(dana.user)
    lee_headers = socket_headers(lee.user)

    async def scenario():
        dana_socket, lee_socket = await opened(dana_headers), await opened(lee_headers)
        await dana_socket.send_json_to(
            {
                "type": "transfer",
                "call_id": call.telephony_call_id,
                "to_queue": "loyalty",
                "note": NOTE,
            }
        )
        offer = await next_message(lee_socket, "offer")
        await dana_socket.disconnect()
        await lee_socket.disconnect()
        return offer

    offer = async_to_sync(scenario)()

    assert offer["handoff"]["note"] == NOTE
    assert Offer.objects.get(id=offer["offer_id"]).agent_id == lee.id


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"to_agent": None, "to_queue": "no-such-queue"}, "to_queue"),
        ({"to_agent": None, "to_queue": ["loyalty"]}, "to_queue"),
        ("nobody_free_in_queue", "to_queue"),
        ({"to_agent": 999999}, "to_agent"),
        ({"to_agent": "lee"}, "to_agent"),
        ({"call_id": "CA-not-hers"}, "call_id"),
        ({"note": "  "}, "note"),
        ({"note": "x" * 201}, "note"),
        ({"note": "two\nlines"}, "note"),
        ("lee_busy", "to_agent"),
        ("lee_offline", "to_agent"),
    ],
)
def test_a_bad_transfer_is_refused_naming_the_field_and_changes_nothing(
    dana_on_a_call, change, field
):
    dana, lee, call = dana_on_a_call
    message = {"type": "transfer", "call_id": call.telephony_call_id, "to_agent": lee.id}
    message["note"] = NOTE
    if change == "lee_busy":
        Agent.objects.filter(id=lee.id).update(status=AgentStatus.WRAP_UP)
    elif change == "lee_offline":
        Agent.objects.filter(id=lee.id).update(status=AgentStatus.OFFLINE)
    elif change == "nobody_free_in_queue":
        Agent.objects.filter(id=lee.id).update(status=AgentStatus.BREAK)
        message.update({"to_agent": None, "to_queue": "loyalty"})
    else:
        message.update(change)

    dana_headers = socket_headers(dana.user)

    async def scenario():
        socket = await opened(dana_headers)
        await socket.send_json_to(message)
        error = await next_message(socket, "error")
        await socket.disconnect()
        return error

    error = async_to_sync(scenario)()

    assert error["field"] == field
    assert not Offer.objects.filter(call=call).exists()


def test_only_the_agent_on_the_call_can_transfer_it(dana_on_a_call, make_agent):
    dana, lee, call = dana_on_a_call
    kim = make_agent("kim", status="available")

    kim_headers = socket_headers(kim.user)

    async def scenario():
        socket = await opened(kim_headers)
        await ask_to_transfer(socket, call, to=lee)
        error = await next_message(socket, "error")
        await socket.disconnect()
        return error

    assert async_to_sync(scenario)()["field"] == "call_id"
    assert not Offer.objects.filter(call=call).exists()


def test_a_closed_consent_callers_hand_off_card_shows_the_note_but_no_history(
    dana_on_a_call,
):
    dana, lee, call = dana_on_a_call
    maya = call.customer
    maya.consent = "closed"
    maya.save(update_fields=["consent"])
    CallNote.objects.create(customer=maya, text="Prefers email; asked about loyalty points")

    dana_headers = socket_headers(dana.user)
    lee_headers = socket_headers(lee.user)

    async def scenario():
        dana_socket, lee_socket = await opened(dana_headers), await opened(lee_headers)
        await ask_to_transfer(dana_socket, call, to=lee)
        offer = await next_message(lee_socket, "offer")
        await dana_socket.disconnect()
        await lee_socket.disconnect()
        return offer

    offer = async_to_sync(scenario)()

    assert offer["handoff"]["note"] == NOTE
    card = json.dumps(offer["caller"])
    assert "loyalty points" not in card
    assert ContextAccess.objects.filter(
        user=lee.user, customer=maya, reason=AccessReason.OFFER
    ).exists()


def test_the_caller_hanging_up_while_the_hand_off_was_being_made_frees_lee(dana_on_a_call):
    dana, lee, call = dana_on_a_call

    dana_headers = socket_headers(dana.user)
    lee_headers = socket_headers(lee.user)

    async def scenario():
        dana_socket, lee_socket = await opened(dana_headers), await opened(lee_headers)
        await ask_to_transfer(dana_socket, call, to=lee)
        offer = await next_message(lee_socket, "offer")
        await lee_socket.send_json_to({"type": "accept", "offer_id": offer["offer_id"]})
        await next_message(dana_socket, "transfer")
        await next_message(dana_socket, "transfer")
        await dana_socket.disconnect()
        await lee_socket.disconnect()

    async_to_sync(scenario)()
    assert status_of(lee) == AgentStatus.BUSY

    phone_reports(event("call.ended", call.telephony_call_id, reason="completed"))

    wait_until(lambda: Call.objects.get(id=call.id).state == CallState.ENDED, timeout=15)
    # Nobody ends up on two calls or none: Dana wraps up her call, Lee is free again.
    assert (status_of(dana), status_of(lee)) == (AgentStatus.WRAP_UP, AgentStatus.AVAILABLE)


@pytest.mark.parametrize(
    ("action", "instruction"),
    [("hangup", "call.hangup"), ("hold", "call.hold")],
)
def test_hang_up_and_hold_from_the_console_are_pushed_signed(dana_on_a_call, action, instruction):
    dana, _, call = dana_on_a_call

    dana_headers = socket_headers(dana.user)

    async def scenario():
        socket = await opened(dana_headers)
        await socket.send_json_to({"type": action, "call_id": call.telephony_call_id})
        await asyncio.sleep(0.2)
        await socket.disconnect()

    async_to_sync(scenario)()

    headers, body = wait_until(lambda: pushed(instruction), timeout=15)[0]
    Webhook(SECRET).verify(body, headers)
    assert json.loads(body) == {
        "type": instruction,
        "call_id": call.telephony_call_id,
        "agent": "1001",
    }


def test_resume_is_pushed_for_a_held_call_and_refused_for_one_that_is_not(dana_on_a_call):
    dana, _, call = dana_on_a_call

    dana_headers = socket_headers(dana.user)

    async def scenario():
        socket = await opened(dana_headers)
        await socket.send_json_to({"type": "resume", "call_id": call.telephony_call_id})
        error = await next_message(socket, "error")
        await socket.disconnect()
        return error

    assert async_to_sync(scenario)()["field"] == "type"
    Call.objects.filter(id=call.id).update(state=CallState.HELD)

    dana_headers = socket_headers(dana.user)

    async def resume():
        socket = await opened(dana_headers)
        await socket.send_json_to({"type": "resume", "call_id": call.telephony_call_id})
        await asyncio.sleep(0.2)
        await socket.disconnect()

    async_to_sync(resume)()
    headers, body = wait_until(lambda: pushed("call.resume"), timeout=15)[0]
    Webhook(SECRET).verify(body, headers)


def test_a_reconnect_heals_the_hand_off_ringing_and_the_one_accepted(dana_on_a_call):
    dana, lee, call = dana_on_a_call
    offer = transfers.request_transfer(
        agent_id=dana.id, telephony_call_id=call.telephony_call_id, to_agent_id=lee.id, note=NOTE
    )
    lee_headers = socket_headers(lee.user)

    async def first_message():
        socket = WebsocketCommunicator(application, "/ws/agent/", headers=lee_headers)
        connected, _ = await socket.connect()
        assert connected
        state = await socket.receive_json_from(timeout=5)
        await socket.disconnect()
        return state

    ringing = async_to_sync(first_message)()
    console_services.accept_offer(offer_id=offer.id, agent_id=lee.id)
    accepted = async_to_sync(first_message)()

    assert ringing["offer"]["handoff"]["note"] == NOTE
    # Accepted, not yet moved by the phone system: Lee's screen keeps the caller.
    assert accepted["offer"] is None
    assert accepted["call"]["call_id"] == call.telephony_call_id
    assert accepted["call"]["state"] == CallState.OFFERED


def test_a_call_transfer_whose_message_was_lost_is_pushed_by_the_worker_all_the_same(
    dana_on_a_call,
):
    """The accept committed but its task never reached the broker (here: never published):
    beat's look for lost instructions finds the hand-off not carried out and pushes it."""
    dana, lee, call = dana_on_a_call
    offer = transfers.request_transfer(
        agent_id=dana.id, telephony_call_id=call.telephony_call_id, to_agent_id=lee.id, note=NOTE
    )
    offers.accept_offer(offer_id=offer.id, agent_id=lee.id)

    headers, body = wait_until(lambda: pushed("call.transfer"), timeout=20)[0]

    Webhook(SECRET).verify(body, headers)
    assert json.loads(body)["decision_id"] == Offer.objects.get(id=offer.id).decision.id
