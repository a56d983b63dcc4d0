"""The webhook's own statements: few round trips, and a repeated webhook id still changes
nothing although the call's details are worked out before the event is known to be new."""

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from routing.models import Call, Queue
from telephony.models import CallEvent
from tests.routing_helpers import prepared_statements
from tests.telephony_support import event, post_event, ringing, webhook_secret  # noqa: F401

CALL_UPDATE = re.compile(r'^\s*UPDATE "?routing_call"?\s', re.MULTILINE)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("webhook_secret")]


def _statements(client, payload, **extra) -> list[str]:
    with CaptureQueriesContext(connection) as captured:
        response = post_event(client, payload, **extra)
    assert response.status_code == 202, response.content
    return [query["sql"] for query in captured.captured_queries]


def test_the_event_and_the_calls_update_are_one_statement(client, queue, make_agent):
    make_agent("dana", extension="2001")
    ringing_sql = _statements(client, ringing("CA1"))
    answered_sql = _statements(client, event("call.answered", "CA1", agent="2001"))

    for statements in (ringing_sql, answered_sql):
        recorded = [sql for sql in statements if "INSERT INTO telephony_callevent" in sql]
        assert len(recorded) == 1
        assert CALL_UPDATE.search(recorded[0])
        # The call is locked by its upsert and written only by that one statement.
        call_writes = [sql for sql in statements if CALL_UPDATE.match(sql)]
        assert call_writes == []
    assert Call.objects.get().state == "connected"


def test_a_reused_webhook_id_leaves_the_call_as_it_was(client, queue, make_agent):
    agent = make_agent("dana", extension="2001")
    post_event(client, ringing("CA1"), webhook_id="msg_1")

    reused = post_event(client, event("call.answered", "CA1", agent="2001"), webhook_id="msg_1")

    assert reused.status_code == 409
    call = Call.objects.get()
    assert (call.state, call.agent_id, call.connected_at) == ("queued", None, None)
    agent.refresh_from_db()
    assert agent.status == "offline"
    assert CallEvent.objects.count() == 1


def test_a_new_calls_customers_and_queue_are_read_with_its_lock(client, queue, make_customer):
    ruth = make_customer("Ruth Fischer")
    other_queue = Queue.objects.create(slug="other", name="Other", numbers=["+18005550199"])

    statements = _statements(client, ringing("CA1"))

    reads = [sql for sql in statements if "customers_phonenumber" in sql]
    assert len(reads) == 1
    assert "routing_queue" in reads[0]
    assert 'INSERT INTO "routing_call"' in reads[0]
    # BEGIN, the call's upsert with that read, the event with the call's update, COMMIT.
    assert len(statements) == 4
    call = Call.objects.get()
    assert (call.customer_id, call.queue_id) == (ruth.id, queue.id)
    assert other_queue.id != call.queue_id


def test_the_webhooks_statements_are_prepared_on_the_server(client, queue, make_agent):
    """Planning them took longer than running them (the ringing upsert: 0.35 ms of planning for
    0.2 ms of work); prepared, each connection plans them once."""
    make_agent("dana", extension="2001")
    for n in range(4):
        post_event(client, ringing(f"CA{n}"))
        post_event(client, event("call.answered", f"CA{n}", agent="2001"))
        post_event(client, event("call.ended", f"CA{n}", reason="completed"))

    prepared = " ".join(prepared_statements())
    assert 'INSERT INTO "routing_call"' in prepared
    assert "customers_phonenumber" in prepared
    assert "INSERT INTO telephony_callevent" in prepared
    assert "WHERE telephony_identity" in prepared
