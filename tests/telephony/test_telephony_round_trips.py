"""The statements that apply a webhook's event (the worker's; the intake records it with one
statement on its own connection): few round trips, and a repeated webhook id still changes
nothing although the call's details are worked out before the event is known to be new."""

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from routing.models import Call, Queue
from telephony.models import CallEvent
from tests.support.routing import prepared_statements
from tests.support.telephony import event, ringing

CALL_UPDATE = re.compile(r'^\s*UPDATE "?routing_call"?\s', re.MULTILINE)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("webhook_secret")]


def _statements(phone_system, payload, **extra) -> list[str]:
    """The statements that applied the event, up to its transaction's COMMIT (a ringing call
    is then routed by the same task, in a transaction of its own)."""
    with CaptureQueriesContext(connection) as captured:
        response = phone_system.post(payload, **extra)
    assert response.status_code == 202, response.content
    statements = [query["sql"] for query in captured.captured_queries]
    return statements[: statements.index("COMMIT") + 1]


def test_marking_the_event_applied_and_the_calls_update_are_one_statement(
    phone_system, queue, make_agent
):
    make_agent("dana", extension="2001")
    ringing_sql = _statements(phone_system, ringing("CA1"))
    answered_sql = _statements(phone_system, event("call.answered", "CA1", agent="2001"))

    for statements in (ringing_sql, answered_sql):
        applied = [sql for sql in statements if "UPDATE telephony_callevent" in sql]
        assert len(applied) == 1
        assert CALL_UPDATE.search(applied[0])
        # The call is locked by its upsert and written only by that one statement.
        call_writes = [sql for sql in statements if CALL_UPDATE.match(sql)]
        assert call_writes == []
    assert Call.objects.get().state == "connected"


def test_a_reused_webhook_id_leaves_the_call_as_it_was(phone_system, queue, make_agent):
    agent = make_agent("dana", extension="2001")
    phone_system.post(ringing("CA1"), webhook_id="msg_1")

    reused = phone_system.post(event("call.answered", "CA1", agent="2001"), webhook_id="msg_1")

    assert reused.status_code == 409
    call = Call.objects.get()
    assert (call.state, call.agent_id, call.connected_at) == ("queued", None, None)
    agent.refresh_from_db()
    assert agent.status == "offline"
    assert CallEvent.objects.count() == 1


def test_a_new_calls_customers_and_queue_are_read_with_its_lock(phone_system, queue, make_customer):
    ruth = make_customer("Ruth Fischer")
    other_queue = Queue.objects.create(slug="other", name="Other", numbers=["+18005550199"])

    statements = _statements(phone_system, ringing("CA1"))

    reads = [sql for sql in statements if "customers_phonenumber" in sql]
    assert len(reads) == 1
    assert "routing_queue" in reads[0]
    assert 'INSERT INTO "routing_call"' in reads[0]
    # The recorded event read; BEGIN, the call's upsert with that read, the event marked
    # applied with the call's update, COMMIT.
    assert len(statements) == 5
    call = Call.objects.get()
    assert (call.customer_id, call.queue_id) == (ruth.id, queue.id)
    assert other_queue.id != call.queue_id


def test_the_webhooks_statements_are_prepared_on_the_server(phone_system, queue, make_agent):
    """Planning them took longer than running them (the ringing upsert: 0.35 ms of planning for
    0.2 ms of work); prepared, each connection plans them once."""
    make_agent("dana", extension="2001")
    for n in range(4):
        phone_system.post(ringing(f"CA{n}"))
        phone_system.post(event("call.answered", f"CA{n}", agent="2001"))
        phone_system.post(event("call.ended", f"CA{n}", reason="completed"))

    prepared = " ".join(prepared_statements())
    assert 'INSERT INTO "routing_call"' in prepared
    assert "customers_phonenumber" in prepared
    assert "UPDATE telephony_callevent" in prepared
    assert "WHERE telephony_identity" in prepared
