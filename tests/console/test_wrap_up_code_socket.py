"""`/ws/agent/` and wrap-up codes (issue 29), over the real Redis channel layer: the agent in
wrap-up chooses a code with `wrap_up_code` and hears it back; where the queue requires one,
`ready` without it is an error that says so and the agent stays in wrap-up; another agent cannot
code the call."""

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator

from rapport.asgi import application
from routing import wrap_up
from routing.models import Agent, Call, Queue
from routing.states import AgentStatus
from tests.support.routing import past_call
from tests.support.sockets import fresh_channel_layer, socket_headers  # noqa: F401 (fixture)

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(60),
    pytest.mark.usefixtures("fast_logins", "fresh_channel_layer"),
]


async def next_message(socket: WebsocketCommunicator, kind: str) -> dict:
    for _ in range(10):
        message = await socket.receive_json_from(timeout=5)
        if message["type"] == kind:
            return message
    raise AssertionError(f"no {kind!r} message")


def test_a_required_code_is_chosen_by_its_message_before_ready(make_agent, make_customer, queue):
    Queue.objects.filter(id=queue.id).update(wrap_up_code_required=True)
    codes = {code.label: code for code in wrap_up.give_default_codes(queue)}
    dana = make_agent("dana", status="busy")
    call = past_call(customer=make_customer("Maya Chen"), agent=dana, queue=queue, days_ago=0.001)
    Agent.objects.filter(id=dana.id).update(status=AgentStatus.WRAP_UP, wrap_up_call=call)
    headers = socket_headers(dana.user)

    async def scenario():
        socket = WebsocketCommunicator(application, "/ws/agent/", headers=headers)
        await socket.connect()
        state = await next_message(socket, "state")
        await socket.send_json_to({"type": "ready"})
        refused = await next_message(socket, "error")
        await socket.send_json_to(
            {
                "type": "wrap_up_code",
                "call_id": call.telephony_call_id,
                "code": codes["Question answered"].id,
            }
        )
        chosen = await next_message(socket, "wrap_up_code")
        await socket.send_json_to({"type": "ready"})
        ready = await next_message(socket, "status")
        await socket.disconnect()
        return state, refused, chosen, ready

    state, refused, chosen, ready = async_to_sync(scenario)()

    assert state["call"]["queue_id"] == queue.id
    assert state["call"]["wrap_up_code"] is None
    assert refused == {
        "type": "error",
        "message": "Choose a wrap-up code before Ready.",
        "field": "wrap_up_code",
    }
    assert chosen == {
        "type": "wrap_up_code",
        "call_id": call.telephony_call_id,
        "code": codes["Question answered"].id,
        "label": "Question answered",
    }
    assert (ready["status"], ready["reason"]) == ("available", "ready")
    assert Call.objects.get(id=call.id).wrap_up_label == "Question answered"


def test_an_agent_cannot_code_a_call_that_is_not_theirs(make_agent, make_customer, queue):
    codes = wrap_up.give_default_codes(queue)
    dana = make_agent("dana", status="available")
    sam = make_agent("sam", status="available")
    call = past_call(customer=make_customer("Maya Chen"), agent=sam, queue=queue, days_ago=0.001)
    headers = socket_headers(dana.user)

    async def scenario():
        socket = WebsocketCommunicator(application, "/ws/agent/", headers=headers)
        await socket.connect()
        await next_message(socket, "state")
        await socket.send_json_to(
            {"type": "wrap_up_code", "call_id": call.telephony_call_id, "code": codes[0].id}
        )
        refused = await next_message(socket, "error")
        await socket.send_json_to({"type": "wrap_up_code", "call_id": 7, "code": "one"})
        malformed = await next_message(socket, "error")
        await socket.disconnect()
        return refused, malformed

    refused, malformed = async_to_sync(scenario)()

    assert refused["message"] == "This call is not yours to code."
    assert malformed["message"] == "wrap_up_code must be a code's id."
    assert Call.objects.get(id=call.id).wrap_up_label == ""
