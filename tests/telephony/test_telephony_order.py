"""Events of one call arrive in any order: the call's state follows occurred_at, forwards only."""

import random
from datetime import UTC, datetime, timedelta

import pytest

from routing import router
from routing.models import Call
from telephony.models import CallEvent
from tests.support.telephony import event, ringing

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("webhook_secret")]

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def send(phone_system, *events):
    for payload in events:
        response = phone_system.post(payload)
        assert response.status_code == 202, response.content
    return Call.objects.select_related("agent", "queue").get(telephony_call_id=events[0]["call_id"])


def test_an_answer_without_ringing_connects_the_call(phone_system, queue, make_agent):
    dana = make_agent("dana", extension="1001")

    call = send(phone_system, event("call.answered", "CA1", at(5), agent="1001"))

    assert (call.state, call.agent) == ("connected", dana)


def test_a_late_ringing_fills_in_the_caller_but_never_moves_the_call_back(
    phone_system, queue, make_agent, make_customer
):
    make_agent("dana", extension="1001")
    maya = make_customer("Maya", phones=["+14155550123"])

    call = send(
        phone_system,
        event("call.answered", "CA1", at(5), agent="1001"),
        ringing("CA1", at(0)),
    )

    assert (call.state, call.customer, call.queue) == ("connected", maya, queue)
    late = CallEvent.objects.get(type="call.ringing")
    assert late.applied is False
    assert "older" in late.outcome


def test_an_end_before_the_answer_still_ends_the_call_with_its_agent(
    phone_system, queue, make_agent
):
    dana = make_agent("dana", extension="1001")

    call = send(
        phone_system,
        event("call.ended", "CA1", at(60)),
        event("call.answered", "CA1", at(5), agent="1001"),
        ringing("CA1", at(0)),
    )

    assert (call.state, call.agent, call.connected_at) == ("ended", dana, at(5))


def test_a_caller_who_hangs_up_while_waiting_abandoned_the_call(phone_system, queue):
    call = send(phone_system, ringing("CA1", at(0)), event("call.ended", "CA1", at(30)))

    assert (call.state, call.ended_at) == ("abandoned", at(30))


def test_an_impossible_move_is_recorded_not_applied(phone_system, queue):
    call = send(phone_system, ringing("CA1", at(0)), event("call.held", "CA1", at(10)))

    assert call.state == "queued"
    held = CallEvent.objects.get(type="call.held")
    assert (held.applied, held.outcome) == (False, "a call cannot move from queued to held")


def test_nothing_moves_a_call_once_it_ended(phone_system, queue, make_agent):
    make_agent("dana", extension="1001")

    call = send(
        phone_system,
        ringing("CA1", at(0)),
        event("call.ended", "CA1", at(30), reason="abandoned"),
        event("call.answered", "CA1", at(40), agent="1001"),
    )

    assert call.state == "abandoned"
    assert CallEvent.objects.get(type="call.answered").applied is False


def test_a_transfer_hands_the_call_to_the_new_agent(phone_system, queue, make_agent):
    make_agent("dana", extension="1001")
    lee = make_agent("lee", extension="1002")

    call = send(
        phone_system,
        ringing("CA1", at(0)),
        event("call.answered", "CA1", at(5), agent="1001"),
        event("call.transferred", "CA1", at(50), agent="1002"),
    )

    assert (call.state, call.agent) == ("transferred", lee)


def test_it_tells_the_router_what_happened(phone_system, queue, make_agent, monkeypatch):
    make_agent("dana", extension="1001")
    heard = []
    for name in ("call_arrived", "call_answered", "call_ended"):
        monkeypatch.setattr(
            router, name, lambda call, name=name, **_: heard.append((name, call.state))
        )

    send(
        phone_system,
        ringing("CA1", at(0)),
        event("call.answered", "CA1", at(5), agent="1001"),
        event("call.ended", "CA1", at(60), reason="completed"),
    )

    assert heard == [
        ("call_arrived", "queued"),
        ("call_answered", "connected"),
        ("call_ended", "ended"),
    ]


def _script(number: int) -> list[dict]:
    """One call's events in the order they happened; the kinds of call a team sees."""
    call_id = f"CA{number}"
    base = number * 600
    answered = event("call.answered", call_id, at(base + 5), agent="1001")
    end = event("call.ended", call_id, at(base + 120), reason="completed")
    kind = number % 7
    if kind == 0:
        return [ringing(call_id, at(base)), answered, end]
    if kind == 1:
        return [
            ringing(call_id, at(base)),
            event("call.ended", call_id, at(base + 30), reason="abandoned"),
        ]
    if kind == 2:
        return [
            ringing(call_id, at(base)),
            answered,
            event("call.held", call_id, at(base + 40)),
            event("call.resumed", call_id, at(base + 70)),
            end,
        ]
    if kind == 3:
        return [
            ringing(call_id, at(base)),
            answered,
            event("call.transferred", call_id, at(base + 60), agent="1002"),
            end,
        ]
    if kind == 4:
        return [
            ringing(call_id, at(base), to="+18005550999"),
            event("call.ended", call_id, at(base + 9)),
        ]
    if kind == 5:
        return [ringing(call_id, at(base)), answered, event("call.ended", call_id, at(base + 90))]
    return [answered, end]


def _final_states(prefix: str) -> dict:
    return {
        call.telephony_call_id.removeprefix(prefix): (
            call.state,
            call.agent.telephony_identity if call.agent else None,
            call.customer_id,
            call.queue.slug if call.queue else None,
            call.end_reason,
            call.from_e164,
            call.connected_at,
        )
        for call in Call.objects.select_related("agent", "queue").filter(
            telephony_call_id__startswith=prefix
        )
    }


def test_shuffled_events_of_100_calls_end_in_the_same_states_as_in_order(
    phone_system, queue, make_agent, make_customer
):
    make_agent("dana", extension="1001")
    make_agent("lee", extension="1002")
    make_customer("Maya", phones=["+14155550123"])
    scripts = [_script(number) for number in range(100)]

    def renamed(payload: dict, prefix: str) -> dict:
        return payload | {"call_id": prefix + payload["call_id"]}

    in_order = [renamed(payload, "in-order-") for script in scripts for payload in script]
    shuffled = [renamed(payload, "shuffled-") for script in scripts for payload in script]
    random.Random(3).shuffle(shuffled)
    for payload in in_order + shuffled:
        assert phone_system.post(payload).status_code == 202

    expected = _final_states("in-order-")
    assert len(expected) == 100
    assert {state for state, *_ in expected.values()} == {"ended", "abandoned"}
    assert _final_states("shuffled-") == expected
