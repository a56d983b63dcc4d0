"""Wrap-up codes (issue 29): a queue's short list of outcomes, chosen by the agent on the call or
wrapping it up, required before Ready where the queue says so, kept beside the note in the
caller's history and in the export. Every request is the agent's or supervisor's own, with their
session, through the ASGI application."""

from __future__ import annotations

import threading
import time

import psycopg
import pytest
from django.contrib.auth.models import Group, User
from django.db import connection

from customers.models import CallNote
from routing.models import Agent, AgentStatusChange, Call, Queue, WrapUpCode
from routing.states import AgentStatus
from tests.support.people import Person, request_connections_closed  # noqa: F401 (fixture)
from tests.support.routing import past_call

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(60),
    pytest.mark.usefixtures("fast_logins", "request_connections_closed"),
]


def codes_for(queue: Queue) -> dict[str, WrapUpCode]:
    from routing import wrap_up

    wrap_up.give_default_codes(queue)
    return {code.label: code for code in queue.wrap_up_codes.all()}


def in_wrap_up(agent: Agent, call: Call) -> None:
    Agent.objects.filter(id=agent.id).update(status=AgentStatus.WRAP_UP, wrap_up_call=call)


@pytest.fixture
def wrapping_up(make_agent, make_customer, queue):
    """Dana has just ended Maya's call and wraps it up."""
    dana = make_agent("dana", status="busy")
    maya = make_customer("Maya Chen", consent="open")
    call = past_call(customer=maya, agent=dana, queue=queue, days_ago=0.001)
    in_wrap_up(dana, call)
    return dana, maya, call


def test_the_agent_wrapping_up_chooses_a_code_and_the_calls_notes_carry_it(wrapping_up, queue):
    dana, maya, call = wrapping_up
    codes = codes_for(queue)
    person = Person(dana.user)
    before = person.post(
        f"/api/customers/{maya.id}/notes/",
        {"text": "Swapped the boots", "call_id": call.telephony_call_id},
    )
    assert before.status_code == 201, before.text
    assert before.json()["wrap_up_code"] is None

    chosen = person.patch(
        f"/api/calls/{call.telephony_call_id}/",
        {"wrap_up_code": codes["Exchange arranged"].id},
    )

    assert chosen.status_code == 200, chosen.text
    assert chosen.json()["wrap_up_code"] == {
        "id": codes["Exchange arranged"].id,
        "label": "Exchange arranged",
    }
    after = person.post(
        f"/api/customers/{maya.id}/notes/",
        {"text": "Sizes to check", "call_id": call.telephony_call_id},
    )
    assert after.json()["wrap_up_code"] == "Exchange arranged"
    history = person.get(f"/api/customers/{maya.id}/notes/").json()["notes"]
    assert [note["wrap_up_code"] for note in history] == ["Exchange arranged"] * 2


def test_a_code_is_kept_on_the_call_when_the_admin_deletes_it(wrapping_up, queue):
    dana, maya, call = wrapping_up
    codes = codes_for(queue)
    Person(dana.user).patch(
        f"/api/calls/{call.telephony_call_id}/", {"wrap_up_code": codes["Refund"].id}
    )

    codes["Refund"].delete()

    call.refresh_from_db()
    assert (call.wrap_up_code_id, call.wrap_up_label) == (None, "Refund")


def test_only_the_agent_of_the_call_codes_it_and_only_with_its_queues_codes(
    wrapping_up, make_agent, queue
):
    dana, _maya, call = wrapping_up
    sam = make_agent("sam", status="available")
    other = Queue.objects.create(slug="vip", name="VIP")
    vip_code = codes_for(other)["Refund"]
    path = f"/api/calls/{call.telephony_call_id}/"

    by_sam = Person(sam.user).patch(path, {"wrap_up_code": codes_for(queue)["Refund"].id})
    wrong_queue = Person(dana.user).patch(path, {"wrap_up_code": vip_code.id})
    not_a_number = Person(dana.user).patch(path, {"wrap_up_code": "refund"})

    assert by_sam.status_code == 403
    assert wrong_queue.status_code == 400
    assert "wrap_up_code" in wrong_queue.json()["errors"]
    assert not_a_number.status_code == 400
    assert "wrap_up_code" in not_a_number.json()["errors"]
    call.refresh_from_db()
    assert call.wrap_up_label == ""


def test_a_queue_that_requires_a_code_keeps_the_agent_in_wrap_up_until_one_is_chosen(
    wrapping_up, queue
):
    dana, _maya, call = wrapping_up
    Queue.objects.filter(id=queue.id).update(wrap_up_code_required=True)
    codes = codes_for(queue)
    person = Person(dana.user)

    by_ready = person.post(f"/api/agents/{dana.id}/ready/")
    by_status = person.patch(f"/api/agents/{dana.id}/", {"status": "available"})

    for refused in (by_ready, by_status):
        assert refused.status_code == 400
        assert refused.json()["errors"] == {"wrap_up_code": ["Choose a wrap-up code before Ready."]}
    assert Agent.objects.get(id=dana.id).status == AgentStatus.WRAP_UP

    person.patch(f"/api/calls/{call.telephony_call_id}/", {"wrap_up_code": codes["Refund"].id})
    ready = person.post(f"/api/agents/{dana.id}/ready/")

    assert ready.status_code == 200, ready.text
    assert ready.json()["status"] == AgentStatus.AVAILABLE


def test_a_required_code_does_not_keep_an_agent_from_a_break(wrapping_up, queue):
    dana, _maya, _call = wrapping_up
    Queue.objects.filter(id=queue.id).update(wrap_up_code_required=True)

    response = Person(dana.user).patch(f"/api/agents/{dana.id}/", {"status": "break"})

    assert response.status_code == 200, response.text
    assert AgentStatusChange.objects.filter(agent=dana, status="break").exists()


def test_a_queue_made_through_the_api_comes_with_the_default_codes(db):
    morgan = User.objects.create_user("morgan")
    morgan.groups.add(Group.objects.get_or_create(name="supervisor")[0])
    person = Person(morgan)

    created = person.post("/api/queues/", {"slug": "returns", "name": "Returns"})
    listed = person.get("/api/queues/").json()

    assert created.status_code == 201, created.text
    assert [(code["key"], code["label"]) for code in created.json()["wrap_up_codes"]] == [
        (1, "Exchange arranged"),
        (2, "Refund"),
        (3, "Question answered"),
        (4, "Call back promised"),
    ]
    assert listed[0]["wrap_up_code_required"] is False
    assert [code["promises_call_back"] for code in listed[0]["wrap_up_codes"]] == [
        False,
        False,
        False,
        True,
    ]


def test_the_export_names_each_calls_wrap_up_code(wrapping_up, queue):
    dana, maya, call = wrapping_up
    codes = codes_for(queue)
    Person(dana.user).patch(
        f"/api/calls/{call.telephony_call_id}/", {"wrap_up_code": codes["Call back promised"].id}
    )
    CallNote.objects.create(
        customer=maya, author=dana.user, text="Ring her Friday", call_id=call.id
    )
    admin = User.objects.create_user("admin", is_staff=True)

    exported = Person(admin).get(f"/api/customers/{maya.id}/export/").json()

    assert [(c["wrap_up_code"], c["call_back_promised"]) for c in exported["calls"]] == [
        ("Call back promised", True)
    ]


def _queue_form(queue: Queue, codes: list[WrapUpCode], new: dict[str, str]) -> dict[str, str]:
    """The admin's queue page as posted: the queue's fields, its codes, and one code added."""
    form = {
        "slug": queue.slug,
        "name": queue.name,
        "numbers": ",".join(queue.numbers),
        "last_agent_wait_seconds": queue.last_agent_wait_seconds,
        "hold_averse_wait_seconds": queue.hold_averse_wait_seconds,
        "offer_timeout_seconds": queue.offer_timeout_seconds,
        "wrap_up_seconds": queue.wrap_up_seconds,
        "last_agent_lookback_days": queue.last_agent_lookback_days,
        "service_level_seconds": queue.service_level_seconds,
        "callback_attempts": queue.callback_attempts,
        "callback_retry_seconds": queue.callback_retry_seconds,
        "wrap_up_code_required": "on",
        "wrap_up_codes-TOTAL_FORMS": len(codes) + 1,
        "wrap_up_codes-INITIAL_FORMS": len(codes),
        "wrap_up_codes-MIN_NUM_FORMS": 0,
        "wrap_up_codes-MAX_NUM_FORMS": 1000,
    }
    rows = [{"id": code.id, "key": code.key, "label": code.label, "active": "on"} for code in codes]
    for n, row in enumerate([*rows, new]):
        form.update({f"wrap_up_codes-{n}-{field}": value for field, value in row.items()})
        form[f"wrap_up_codes-{n}-queue"] = queue.id
    return form


def test_an_administrator_edits_a_queues_codes_and_keys_stay_one_per_code(queue, client):
    codes = list(codes_for(queue).values())
    client.force_login(User.objects.create_superuser("root", password="pw-root"))
    path = f"/admin/routing/queue/{queue.id}/change/"

    clash = client.post(
        path, _queue_form(queue, codes, {"key": 2, "label": "Gift card sent", "active": "on"})
    )
    added = client.post(
        path, _queue_form(queue, codes, {"key": 5, "label": "Gift card sent", "active": "on"})
    )

    assert clash.status_code == 200
    assert b"Gift card sent" in clash.content and b"errorlist" in clash.content
    assert added.status_code == 302
    assert [(code.key, code.label) for code in queue.wrap_up_codes.order_by("key")][-1] == (
        5,
        "Gift card sent",
    )
    assert Queue.objects.get(id=queue.id).wrap_up_code_required is True


STAND_IN = "rapport-test-stand-in"


def another_connection() -> dict:
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    return {**params, "autocommit": True, "application_name": STAND_IN}


def _until_stand_ins_are_gone(timeout: float = 5) -> None:
    """A closed connection's server process ends a moment later; the test database is dropped
    only once none is left."""
    deadline = time.monotonic() + timeout
    with connection.cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", [STAND_IN]
            )
            if not cursor.fetchone()[0]:
                return
            time.sleep(0.02)


def test_a_note_and_the_router_holding_its_call_both_commit(wrapping_up, queue):
    """The router holds a call's lock while it reads and writes the caller; the agent saves a
    note on that call meanwhile. Both commit, one after the other: the note waited for the call
    under the customer's lock, the router then waited for the customer, and PostgreSQL broke
    the circle by failing one of them (the console said "Not saved")."""
    dana, maya, call = wrapping_up
    codes_for(queue)
    holding = threading.Event()
    failed: list[BaseException] = []

    def router_holds_the_call():
        try:
            with psycopg.connect(**another_connection()) as router, router.transaction():
                router.execute("SELECT 1 FROM routing_call WHERE id = %s FOR UPDATE", [call.id])
                holding.set()
                _until_a_session_waits_for_a_lock()
                router.execute("UPDATE customers_customer SET name = name WHERE id = %s", [maya.id])
        except BaseException as error:
            failed.append(error)
            holding.set()

    router = threading.Thread(target=router_holds_the_call)
    router.start()
    holding.wait(timeout=5)
    saved = Person(dana.user).post(
        f"/api/customers/{maya.id}/notes/",
        {"text": "Swapped the boots", "call_id": call.telephony_call_id},
    )
    router.join(timeout=10)
    _until_stand_ins_are_gone()

    assert not failed, failed
    assert saved.status_code == 201, saved.text


def _until_a_session_waits_for_a_lock(timeout: float = 5) -> None:
    deadline = time.monotonic() + timeout
    with psycopg.connect(**another_connection()) as spy:
        while time.monotonic() < deadline:
            waiting = spy.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
            ).fetchone()[0]
            if waiting:
                return
            time.sleep(0.02)
    raise AssertionError("the note never waited for the call")
