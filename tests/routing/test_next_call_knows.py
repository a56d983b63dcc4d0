"""The next call knows (issue 29): a caller whose last call ended with a call back promised (its
wrap-up code) or a matter left open (its note) is shown that first when they ring again, and
their busy last agent is told who is calling back and about what, as consent allows. Through
`route_call` on real PostgreSQL; the messages that would go to the agents' sockets are
captured."""

from __future__ import annotations

import pytest

from customers.models import CallNote, ContextAccess
from routing import router, wrap_up
from routing.models import Call
from tests.support.routing import arrive, past_call

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]


def last_call(customer, agent, queue, *, code: str = "", open_matter: bool = False) -> Call:
    call = past_call(customer=customer, agent=agent, queue=queue, days_ago=3)
    if code:
        chosen = {c.label: c for c in wrap_up.give_default_codes(queue)}[code]
        Call.objects.filter(id=call.id).update(
            wrap_up_code=chosen,
            wrap_up_label=chosen.label,
            call_back_promised=chosen.promises_call_back,
        )
    CallNote.objects.create(
        customer=customer,
        author=agent.user,
        text="Boots swapped for a size up",
        call_id=call.id,
        open_matter=open_matter,
        wrap_up_label=code,
    )
    return call


def messages_of(sent, kind: str) -> list[tuple[int, dict]]:
    return [(agent_id, message) for agent_id, message in sent if message["type"] == kind]


def test_the_offer_card_says_first_that_a_call_back_was_promised(
    make_agent, make_customer, queue, sent
):
    dana = make_agent("dana", status="available")
    maya = make_customer("Maya Chen", consent="open")
    last_call(maya, dana, queue, code="Call back promised")

    router.route_call(arrive(queue=queue, customer=maya, publish=False).id)

    ((agent_id, offer),) = messages_of(sent, "offer")
    assert agent_id == dana.id
    customer = offer["caller"]["customer"]
    assert customer["last_agent"]["follow_up"] == {
        "call_back_promised": True,
        "open_matter": False,
        "wrap_up_code": "Call back promised",
        "text": "Call back promised",
    }
    assert customer["notes"][0]["wrap_up_code"] == "Call back promised"
    # Offered to her, she reads it on the card: nothing more to tell her.
    assert messages_of(sent, "calling_back") == []


def test_the_busy_last_agent_is_told_who_is_calling_back_about_what(
    make_agent, make_customer, queue, sent
):
    dana = make_agent("dana", status="busy")
    sam = make_agent("sam", status="available")
    maya = make_customer("Maya Chen", consent="conditional")
    last_call(maya, dana, queue, code="Exchange arranged", open_matter=True)
    call = arrive(queue=queue, customer=maya, publish=False)

    router.route_call(call.id)

    ((agent_id, told),) = messages_of(sent, "calling_back")
    assert agent_id == dana.id
    assert told["text"] == "Maya is calling back about “Exchange arranged” — still open"
    assert told["caller_name"] == "Maya"
    assert told["call_id"] == call.telephony_call_id
    # Her name on Dana's screen is a look at Maya, in the access log like the waiting line.
    assert ContextAccess.objects.filter(
        customer=maya, user=dana.user, reason="waiting", call_id=call.id
    ).exists()
    assert sam.id not in {agent_id for agent_id, _ in messages_of(sent, "calling_back")}


def test_an_open_matter_without_a_code_is_a_follow_up_too(make_agent, make_customer, queue, sent):
    dana = make_agent("dana", status="wrap_up")
    maya = make_customer("Maya Chen", consent="open")
    last_call(maya, dana, queue, open_matter=True)

    router.route_call(arrive(queue=queue, customer=maya, publish=False).id)

    ((_agent_id, told),) = messages_of(sent, "calling_back")
    assert told["text"] == "Maya is calling back about a matter still open"


def test_with_consent_closed_nothing_of_the_last_call_is_said(
    make_agent, make_customer, queue, sent
):
    dana = make_agent("dana", status="busy")
    make_agent("sam", status="available")
    maya = make_customer("Maya Chen", consent="closed")
    last_call(maya, dana, queue, code="Call back promised", open_matter=True)

    router.route_call(arrive(queue=queue, customer=maya, publish=False).id)

    assert messages_of(sent, "calling_back") == []
    ((_agent_id, waiting),) = messages_of(sent, "caller_waiting")
    assert waiting["caller_name"] is None
    assert not ContextAccess.objects.filter(user=dana.user).exists()


def test_a_last_agent_on_a_break_or_a_last_call_with_nothing_left_is_not_told(
    make_agent, make_customer, queue, sent
):
    dana = make_agent("dana", status="break")
    sam = make_agent("sam", status="busy")
    make_agent("alex", status="available")
    maya = make_customer("Maya Chen", consent="open")
    leo = make_customer("Leo Park", phones=["+14155550999"], consent="open")
    last_call(maya, dana, queue, code="Call back promised")
    last_call(leo, sam, queue, code="Refund")

    router.route_call(arrive(queue=queue, customer=maya, publish=False).id)
    router.route_call(arrive(queue=queue, customer=leo, number="+14155550999", publish=False).id)

    assert messages_of(sent, "calling_back") == []
