"""The caller card's notes and the offer's audit row, each one prepared statement (issue 14):
the same notes as the ORM read gave, the same access rows as bulk_create wrote. Through
`route_call` on real PostgreSQL; the messages that would go to the agent's socket are captured."""

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from customers import audit, selectors
from customers.models import CallNote, ContextAccess
from routing import router
from routing.models import Agent, Call
from routing.states import AgentStatus
from tests.support.routing import arrive, prepared_statements

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]

User = get_user_model()


def _note(customer, author, text, *, minutes_ago, **fields):
    note = CallNote.objects.create(customer=customer, author=author, text=text, **fields)
    CallNote.objects.filter(id=note.id).update(
        created_at=timezone.now() - timedelta(minutes=minutes_ago)
    )
    return note


def _statement_timestamp():
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement_timestamp()")
        return cursor.fetchone()[0]


def _orm_card_notes(customer):
    """The card's notes as the ORM read them before they were written as SQL."""
    notes, more = selectors._newest_notes(
        selectors._visible_notes(customer.id, customer.consent), selectors.NOTES_ON_CARD
    )
    return [selectors.note_data(note) for note in notes], more


def _noted_customer(make_agent, make_customer, *, consent):
    dana = make_agent("dana", status=AgentStatus.AVAILABLE)
    named = User.objects.create_user("pat", first_name="Pat", last_name="Lee")
    plain = User.objects.create_user("kim")
    maya = make_customer("Maya Chen", consent=consent)
    earlier = Call.objects.create(telephony_call_id="CA-earlier", customer=maya)
    for minutes, author in enumerate([dana.user, named, plain, None] * 2):
        _note(
            maya,
            author,
            f"note {minutes}",
            minutes_ago=minutes,
            open_matter=minutes % 3 == 0,
            sizes="W 8",
            call_id=earlier.id if minutes % 2 else None,
        )
    # Two notes at the same moment: the newer id comes first.
    tied = _note(maya, dana.user, "tied a", minutes_ago=20)
    CallNote.objects.filter(id=_note(maya, named, "tied b", minutes_ago=0).id).update(
        created_at=CallNote.objects.get(id=tied.id).created_at
    )
    return dana, maya


@pytest.mark.parametrize("consent", ["open", "conditional", "closed"])
def test_the_cards_notes_are_those_the_orm_read_gave(make_agent, make_customer, consent):
    _dana, maya = _noted_customer(make_agent, make_customer, consent=consent)

    for _ in range(4):  # prepared after a few runs: the same answer either way
        with CaptureQueriesContext(connection) as queries:
            card = selectors.customer_context(maya)
        assert len(queries.captured_queries) == 1
        assert (card["notes"], card["more_notes"]) == _orm_card_notes(maya)
    authors = {note["author"] for note in card["notes"]}
    assert authors <= {"Dana", "Pat Lee", "kim", None}
    if consent != "closed":
        assert authors == {"Dana", "Pat Lee", "kim", None}
        assert card["more_notes"] == 10 - selectors.NOTES_ON_CARD


def test_a_customer_without_notes_has_none_on_the_card(make_customer):
    maya = make_customer("Maya Chen", consent="open")
    card = selectors.customer_context(maya)
    assert (card["notes"], card["more_notes"]) == ([], 0) == _orm_card_notes(maya)


def test_the_audit_rows_are_those_bulk_create_wrote(make_agent, make_customer):
    dana = make_agent("dana")
    sam = make_agent("sam")
    maya = make_customer("Maya Chen")
    leo = make_customer("Leo Park", phones=["+14155550777"])
    reason_text = "x" * 400

    with transaction.atomic():
        before = _statement_timestamp()
        written = audit.record_context_access_by_users(
            customer_ids=[leo.id, maya.id, leo.id],
            users=[sam.user, dana.user],
            reason="lookup",
            reason_text=reason_text,
            call_id=42,
        )
        after = _statement_timestamp()
        # bulk_create's rows, as record_context_access_by_users wrote them before, to compare.
        expected = ContextAccess.objects.bulk_create(
            [
                ContextAccess(
                    customer_id=customer_id,
                    user_id=user.pk,
                    username=user.get_username(),
                    reason="lookup",
                    reason_text=reason_text[:300],
                    call_id=42,
                )
                for user in (sam.user, dana.user)
                for customer_id in (leo.id, maya.id)
            ]
        )

    fields = ["customer_id", "user_id", "username", "reason", "reason_text", "call_id"]

    def values(access):
        return [getattr(access, field) for field in fields]

    assert [values(access) for access in written] == [values(access) for access in expected]
    # The column's default, like bulk_create's DEFAULT: the moment of the insert's statement.
    (accessed_at,) = {access.accessed_at for access in written}
    assert before < accessed_at < after
    assert [access.id for access in written] == sorted(access.id for access in written)
    stored = ContextAccess.objects.in_bulk([access.id for access in written])
    assert [values(stored[access.id]) + [stored[access.id].accessed_at] for access in written] == [
        values(access) + [access.accessed_at] for access in written
    ]
    assert not any(access._state.adding for access in written)
    assert audit.record_context_access(customer_ids=[], user=dana.user, reason="offer") == []
    assert ContextAccess.objects.count() == 8


def test_an_offers_notes_read_and_its_audit_row_are_in_prepared_statements(
    make_agent, make_customer, queue, sent
):
    for n in range(4):
        make_agent(f"agent{n}", status=AgentStatus.AVAILABLE)
    dana, maya = _noted_customer(make_agent, make_customer, consent="open")
    expected_notes = _orm_card_notes(maya)

    for _ in range(4):
        call = arrive(queue=queue, customer=maya, publish=False)
        with CaptureQueriesContext(connection) as queries:
            router.route_call(call.id)
        offer = [message for _agent_id, message in sent if message["type"] == "offer"][-1]
        card = offer["caller"]["customer"]
        assert (card["notes"], card["more_notes"]) == expected_notes
        (agent_id,) = {agent_id for agent_id, message in sent if message is offer}
        (access,) = ContextAccess.objects.filter(call_id=call.id)
        assert (access.customer_id, access.reason) == (maya.id, "offer")
        assert access.username == Agent.objects.get(id=agent_id).user.username
        # The router's opening statement (the call, locked) names the notes too: it asks, in the
        # same round trip, whether the caller's last call left a matter open (issue 29).
        notes_reads = [
            q
            for q in queries.captured_queries
            if CallNote._meta.db_table in q["sql"] and "FOR UPDATE OF call" not in q["sql"]
        ]
        audit_writes = [
            q for q in queries.captured_queries if ContextAccess._meta.db_table in q["sql"]
        ]
        assert len(notes_reads) == 1 and len(audit_writes) == 1

    prepared = prepared_statements()
    assert any(CallNote._meta.db_table in statement for statement in prepared), prepared
    assert any(
        f"INSERT INTO {ContextAccess._meta.db_table}" in statement for statement in prepared
    ), prepared
