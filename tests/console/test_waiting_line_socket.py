"""`/ws/agent/` while a caller is held for their busy last agent: a quiet `caller_waiting` line on
that agent's socket (named as consent allows, audited), gone with `caller_waiting_ended` when the
call is offered, falls back to the queue or ends; and the offer's `hold_rule`, the card's few
words on why the caller was or was not held."""

from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.utils import timezone

from customers.models import Consent, ContextAccess, HoldTolerance, Pace, Provenance
from rapport.asgi import application
from routing import agent_status, router
from routing.models import Agent, Call
from routing.states import AgentStatus
from tests.support.routing import arrive, hang_up, past_call
from tests.support.sockets import fresh_channel_layer, socket_headers  # noqa: F401 (fixture)

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(60),
    pytest.mark.usefixtures("fast_logins"),
]


@pytest.fixture
def team(make_agent, queue):
    """Dana is on a call; Sam is free."""
    queue.last_agent_wait_seconds = 30
    queue.hold_averse_wait_seconds = 0
    queue.save()
    dana = make_agent("dana", status=AgentStatus.BUSY)
    sam = make_agent("sam", status=AgentStatus.AVAILABLE)
    return dana, sam


@pytest.fixture
def dana_s_caller(make_customer, team, queue):
    def make(name: str = "Ruth Fischer", **fields):
        customer = make_customer(name, **fields)
        past_call(customer=customer, agent=team[0], queue=queue, days_ago=3)
        return customer

    return make


async def next_message(socket: WebsocketCommunicator, kind: str) -> dict:
    for _ in range(10):
        message = await socket.receive_json_from(timeout=5)
        if message["type"] == kind:
            return message
    raise AssertionError(f"no {kind!r} message")


def routed(queue, customer) -> Call:
    call = arrive(queue=queue, customer=customer, publish=False)
    router.route_call(call.id)
    return Call.objects.get(id=call.id)


def free_dana_and_offer(dana: Agent) -> None:
    Agent.objects.filter(id=dana.id).update(status=AgentStatus.WRAP_UP)
    agent_status.ready(agent_id=dana.id)
    router.offer_next_call(dana.id)


def wait_runs_out(call: Call) -> None:
    """What the sweeper does once the wait passed."""
    Call.objects.filter(id=call.id).update(last_agent_wait_until=timezone.now() - timedelta(1))
    router.route_call(call.id)


def on_dana_s_socket(dana, action):
    """Dana's socket: the state, then what `action` (run in the database thread) brings."""
    headers = socket_headers(dana.user)

    async def scenario():
        socket = WebsocketCommunicator(application, "/ws/agent/", headers=headers)
        await socket.connect()
        await next_message(socket, "state")
        result = await database_sync_to_async(action)()
        waiting = await next_message(socket, "caller_waiting")
        return socket, result, waiting

    return scenario


def test_a_held_caller_shows_on_their_agents_screen_and_goes_when_offered_to_them(
    team, queue, dana_s_caller
):
    dana, _ = team
    ruth = dana_s_caller(
        consent=Consent.OPEN, hold_tolerance=HoldTolerance.FINE, hold_tolerance_source="caller"
    )
    headers = socket_headers(dana.user)
    held = {}

    async def scenario():
        socket = WebsocketCommunicator(application, "/ws/agent/", headers=headers)
        await socket.connect()
        await next_message(socket, "state")
        held["call"] = await database_sync_to_async(routed)(queue, ruth)
        waiting = await next_message(socket, "caller_waiting")
        await database_sync_to_async(free_dana_and_offer)(dana)
        ended = await next_message(socket, "caller_waiting_ended")
        offer = await next_message(socket, "offer")
        await socket.disconnect()
        return waiting, ended, offer

    waiting, ended, offer = async_to_sync(scenario)()

    call = held["call"]
    assert waiting["call_id"] == call.telephony_call_id
    assert waiting["caller_name"] == "Ruth Fischer"
    assert waiting["notification_name"] == "Ruth"
    assert waiting["waiting_since"] == call.queued_at.isoformat()
    assert waiting["wait_until"] == call.last_agent_wait_until.isoformat()
    assert ended == {
        "type": "caller_waiting_ended",
        "call_id": call.telephony_call_id,
        "why": "offered",
    }
    assert offer["call_id"] == call.telephony_call_id
    assert offer["hold_rule"]["rule"] == "fine_on_hold"
    assert offer["hold_rule"]["provenance"] == "caller"
    assert offer["hold_rule"]["held"] is True
    assert offer["hold_rule"]["text"].startswith("Waited ")
    assert offer["hold_rule"]["text"].endswith(" s for you — fine on hold")
    seen = ContextAccess.objects.filter(customer=ruth, user=dana.user, reason="waiting")
    assert list(seen.values_list("call_id", flat=True)) == [call.id]


def test_the_line_goes_when_the_wait_runs_out_and_the_call_goes_to_the_queue(
    team, queue, dana_s_caller
):
    dana, sam = team
    ruth = dana_s_caller(consent=Consent.OPEN)
    call = {}

    def hold_then_run_out():
        call["held"] = routed(queue, ruth)
        return call["held"]

    hold = on_dana_s_socket(dana, hold_then_run_out)

    async def scenario():
        socket, held, waiting = await hold()
        await database_sync_to_async(wait_runs_out)(held)
        ended = await next_message(socket, "caller_waiting_ended")
        await socket.disconnect()
        return ended

    ended = async_to_sync(scenario)()

    assert (ended["call_id"], ended["why"]) == (call["held"].telephony_call_id, "queue")
    assert call["held"].offers.get().agent == sam


def test_the_line_goes_when_the_caller_hangs_up(team, queue, dana_s_caller):
    dana, _ = team
    ruth = dana_s_caller()

    hold = on_dana_s_socket(dana, lambda: routed(queue, ruth))

    async def scenario():
        socket, held, waiting = await hold()
        await database_sync_to_async(hang_up)(held)
        ended = await next_message(socket, "caller_waiting_ended")
        await socket.disconnect()
        return held, ended

    held, ended = async_to_sync(scenario)()

    assert (ended["call_id"], ended["why"]) == (held.telephony_call_id, "ended")


def test_with_consent_closed_the_line_names_nobody_and_records_no_look(team, queue, dana_s_caller):
    dana, _ = team
    ruth = dana_s_caller(consent=Consent.CLOSED)

    hold = on_dana_s_socket(dana, lambda: routed(queue, ruth))

    async def scenario():
        socket, held, waiting = await hold()
        await socket.disconnect()
        return waiting

    waiting = async_to_sync(scenario)()

    assert waiting["caller_name"] is None
    assert waiting["notification_name"] is None
    assert not ContextAccess.objects.filter(customer=ruth, reason="waiting").exists()


def test_a_reconnect_shows_the_line_again_and_records_the_look(team, queue, dana_s_caller):
    dana, _ = team
    ruth = dana_s_caller(consent=Consent.CONDITIONAL)
    hidden = dana_s_caller("Ada Closed", phones=["+14155550777"], consent=Consent.CLOSED)
    held = routed(queue, ruth)
    routed(queue, hidden)
    headers = socket_headers(dana.user)

    async def reconnect():
        socket = WebsocketCommunicator(application, "/ws/agent/", headers=headers)
        await socket.connect()
        state = await socket.receive_json_from(timeout=5)
        await socket.disconnect()
        return state

    state = async_to_sync(reconnect)()

    lines = state["waiting_callers"]
    assert [line["caller_name"] for line in lines] == ["Ruth Fischer", None]
    assert lines[0]["call_id"] == held.telephony_call_id
    looks = ContextAccess.objects.filter(user=dana.user, reason="waiting")
    assert sorted(looks.values_list("customer_id", "call_id")) == [(ruth.id, held.id)] * 2


def sam_s_card(sam) -> dict:
    """The `hold_rule` of the offer ringing for Sam, as his (re)connected screen gets it."""
    headers = socket_headers(sam.user)

    async def connect():
        socket = WebsocketCommunicator(application, "/ws/agent/", headers=headers)
        await socket.connect()
        state = await socket.receive_json_from(timeout=5)
        await socket.disconnect()
        return state

    return async_to_sync(connect)()["offer"]["hold_rule"]


@pytest.mark.parametrize(
    ("fields", "text", "rule"),
    [
        (
            {"consent": Consent.OPEN, "hold_tolerance": HoldTolerance.AVOID,
             "hold_tolerance_source": Provenance.SAID_BY_CALLER},
            "Sent straight to the queue — avoids holding",
            "avoids_holding",
        ),
        (
            {"consent": Consent.OPEN, "pace": Pace.BRISK,
             "pace_source": Provenance.INFERRED_BY_AGENT},
            "In a rush — not held for Dana",
            "in_a_rush",
        ),
        # Conditional consent hides what an agent inferred: the card says what happened, not why.
        (
            {"consent": Consent.CONDITIONAL, "hold_tolerance": HoldTolerance.AVOID,
             "hold_tolerance_source": Provenance.INFERRED_BY_AGENT},
            "Sent straight to the queue",
            None,
        ),
        # Closed consent shows the pace the caller said, but no last agent.
        (
            {"consent": Consent.CLOSED, "pace": Pace.BRISK,
             "pace_source": Provenance.SAID_BY_CALLER},
            "In a rush — not held for their last agent",
            "in_a_rush",
        ),
    ],
)  # fmt: skip
def test_the_agent_who_gets_a_caller_not_held_sees_why(
    team, queue, dana_s_caller, fields, text, rule
):
    _, sam = team
    routed(queue, dana_s_caller(**fields))

    hold_rule = sam_s_card(sam)

    assert hold_rule["text"] == text
    assert hold_rule["rule"] == rule
    assert hold_rule["held"] is False


def test_a_caller_held_in_vain_tells_the_next_agent_how_long_they_waited(
    team, queue, dana_s_caller
):
    _, sam = team
    held = routed(queue, dana_s_caller(consent=Consent.OPEN))
    Call.objects.filter(id=held.id).update(queued_at=timezone.now() - timedelta(seconds=31))
    wait_runs_out(held)

    hold_rule = sam_s_card(sam)

    assert hold_rule["rule"] == "unknown"
    assert hold_rule["text"].startswith("Waited 3")
    assert hold_rule["text"].endswith(" s for Dana")


def test_nothing_is_said_when_no_hold_rule_applied(make_customer, team, queue):
    _, sam = team
    routed(queue, make_customer("New Person", consent=Consent.OPEN))

    assert sam_s_card(sam) is None
