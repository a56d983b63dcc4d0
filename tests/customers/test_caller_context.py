"""The caller object of an offer: who is calling, how they like to be served, what was said."""

from datetime import timedelta

import pytest
from django.utils import timezone

from customers import services
from customers.models import CallNote, ContextAccess, Provenance
from customers.selectors import customer_ids_for_number, more_notes
from routing.messages import caller_context
from routing.models import Call

pytestmark = pytest.mark.django_db

NUMBER = "+14155550123"


def _note(customer, author, text, *, minutes_ago, **context):
    note = services.add_note(customer=customer, author=author, text=text, **context)
    CallNote.objects.filter(id=note.id).update(
        created_at=timezone.now() - timedelta(minutes=minutes_ago)
    )
    return note


def _context(customer, **kwargs):
    return caller_context(from_e164=NUMBER, customer_ids=[customer.id], **kwargs)["customer"]


def test_an_unknown_number_is_a_new_caller():
    caller = caller_context(from_e164=NUMBER, customer_ids=[])
    assert caller == {"kind": "unknown", "number": NUMBER, "customer": None, "candidates": []}


def test_a_known_caller_comes_with_name_preferences_notes_and_last_agent(
    make_customer, make_agent, queue
):
    dana = make_agent("dana")
    sam = make_agent("sam")
    maya = make_customer("Maya Chen", consent="open")
    services.record_preference(
        customer=maya, preference="pace", value="brisk", source="caller", set_by=dana.user
    )
    services.record_preference(
        customer=maya,
        preference="preferred_channel",
        value="text",
        source="agent",
        set_by=sam.user,
    )
    _note(maya, sam.user, "Wanted the blue ones", minutes_ago=60, sizes="W 8")
    _note(maya, dana.user, "Shoes for a first date", minutes_ago=5, occasion="first date")
    spoke_at = timezone.now() - timedelta(days=2)
    Call.objects.create(
        telephony_call_id="old",
        customer=maya,
        agent=sam,
        queue=queue,
        state="ended",
        connected_at=spoke_at - timedelta(days=5),
    )
    Call.objects.create(
        telephony_call_id="older",
        customer=maya,
        agent=dana,
        queue=queue,
        state="ended",
        connected_at=spoke_at,
    )

    caller = caller_context(from_e164=NUMBER, customer_ids=[maya.id])

    assert caller["kind"] == "known"
    customer = caller["customer"]
    assert customer["name"] == "Maya Chen"
    assert customer["preferences"]["pace"]["value"] == "brisk"
    assert customer["preferences"]["pace"]["source"] == "caller"
    assert customer["preferences"]["pace"]["set_by"] == "Dana"
    assert customer["preferences"]["preferred_channel"] == {
        "value": "text",
        "source": "agent",
        "set_by": "Sam",
        "set_at": maya.preferred_channel_set_at.isoformat(),
    }
    assert customer["preferences"]["hold_tolerance"] == {
        "value": "unknown",
        "source": "unknown",
        "set_by": None,
        "set_at": None,
    }
    assert [note["text"] for note in customer["notes"]] == [
        "Shoes for a first date",
        "Wanted the blue ones",
    ]
    assert customer["notes"][0]["author"] == "Dana"
    assert customer["notes"][0]["occasion"] == "first date"
    assert customer["notes"][1]["sizes"] == "W 8"
    assert customer["more_notes"] == 0
    assert customer["last_agent"] == {
        "id": dana.id,
        "display_name": "Dana",
        "last_spoke_at": spoke_at.isoformat(),
        "follow_up": None,
    }
    assert customer["history_hidden"] is False


def test_a_shared_number_asks_who_is_calling_instead_of_picking(make_customer):
    maya = make_customer("Maya Chen")
    leo = make_customer("Leo Chen")
    caller = caller_context(from_e164=NUMBER, customer_ids=[maya.id, leo.id])
    assert caller["kind"] == "shared"
    assert caller["customer"] is None
    assert caller["candidates"] == [
        {"id": leo.id, "name": "Leo Chen"},
        {"id": maya.id, "name": "Maya Chen"},
    ]


def test_closed_consent_shows_name_pace_and_open_matters_only(make_customer, make_agent, queue):
    dana = make_agent("dana")
    maya = make_customer("Maya Chen", consent="closed", survey_trust="agree")
    services.record_preference(
        customer=maya, preference="pace", value="brisk", source="caller", set_by=dana.user
    )
    services.record_preference(
        customer=maya,
        preference="preferred_channel",
        value="text",
        source="caller",
        set_by=dana.user,
    )
    _note(maya, dana.user, "New baby on the way", minutes_ago=10, occasion="new baby")
    _note(maya, dana.user, "Refund still pending", minutes_ago=5, open_matter=True)
    Call.objects.create(
        telephony_call_id="c1",
        customer=maya,
        agent=dana,
        queue=queue,
        state="ended",
        connected_at=timezone.now(),
    )

    customer = _context(maya)

    assert customer["name"] == "Maya Chen"
    assert customer["history_hidden"] is True
    assert customer["preferences"]["pace"]["value"] == "brisk"
    assert customer["preferences"]["preferred_channel"]["value"] == "unknown"
    assert [note["text"] for note in customer["notes"]] == ["Refund still pending"]
    assert customer["more_notes"] == 0
    assert customer["last_agent"] is None
    assert customer["trust"]["consent"] == "closed"
    assert customer["trust"]["survey_trust"] == "unknown"


def test_conditional_consent_reports_inferred_preferences_as_unknown(make_customer, make_agent):
    dana = make_agent("dana")
    maya = make_customer("Maya Chen", consent="conditional")
    services.record_preference(
        customer=maya, preference="pace", value="brisk", source="agent", set_by=dana.user
    )
    services.record_preference(
        customer=maya,
        preference="hold_tolerance",
        value="fine",
        source="caller",
        set_by=dana.user,
    )
    _note(maya, dana.user, "Buys for her brother", minutes_ago=1)

    customer = _context(maya)

    assert customer["preferences"]["pace"] == {
        "value": "unknown",
        "source": "unknown",
        "set_by": None,
        "set_at": None,
    }
    assert customer["preferences"]["hold_tolerance"]["value"] == "fine"
    assert customer["notes"][0]["text"] == "Buys for her brother"
    assert customer["history_hidden"] is False


def test_open_consent_shows_inferred_preferences(make_customer, make_agent):
    dana = make_agent("dana")
    maya = make_customer("Maya Chen", consent="open")
    services.record_preference(
        customer=maya, preference="pace", value="unhurried", source="agent", set_by=dana.user
    )
    assert _context(maya)["preferences"]["pace"]["value"] == "unhurried"
    assert _context(maya)["preferences"]["pace"]["source"] == Provenance.INFERRED_BY_AGENT


def test_identity_verification_comes_from_the_call(make_customer):
    maya = make_customer("Maya Chen", consent="open", customer_since="2019-04-02")
    assert _context(maya)["trust"]["identity_verified"] is False
    trust = _context(maya, identity_verified=True)["trust"]
    assert trust["identity_verified"] is True
    assert trust["customer_since"] == "2019-04-02"


def test_the_card_holds_the_newest_five_notes_and_counts_the_rest(make_customer, make_agent):
    dana = make_agent("dana")
    maya = make_customer("Maya Chen", consent="open")
    for minutes_ago in range(12, 0, -1):
        _note(maya, dana.user, f"note {minutes_ago}", minutes_ago=minutes_ago)
    customer = _context(maya)
    assert [note["text"] for note in customer["notes"]] == [f"note {n}" for n in (1, 2, 3, 4, 5)]
    assert customer["more_notes"] == 7


def test_more_notes_pages_through_the_older_notes(make_customer, make_agent):
    dana = make_agent("dana")
    maya = make_customer("Maya Chen", consent="open")
    for n in range(8):
        services.add_note(customer=maya, author=dana.user, text=f"note {n}")
    # All notes share one created_at (one transaction): the id breaks the tie.
    CallNote.objects.filter(customer=maya).update(created_at=timezone.now())
    card = _context(maya)
    assert [note["text"] for note in card["notes"]] == [f"note {n}" for n in (7, 6, 5, 4, 3)]

    page = more_notes(maya.id, card["notes"][-1]["id"], 2)
    assert [note["text"] for note in page["notes"]] == ["note 2", "note 1"]
    assert page["more_notes"] == 1
    last = more_notes(maya.id, page["notes"][-1]["id"], 20)
    assert [note["text"] for note in last["notes"]] == ["note 0"]
    assert last["more_notes"] == 0


def test_more_notes_keeps_to_closed_consent(make_customer, make_agent):
    dana = make_agent("dana")
    maya = make_customer("Maya Chen", consent="closed")
    for n in range(8):
        _note(maya, dana.user, f"note {n}", minutes_ago=10 - n, open_matter=n % 2 == 0)
    assert [note["text"] for note in more_notes(maya.id, None, 20)["notes"]] == [
        "note 6",
        "note 4",
        "note 2",
        "note 0",
    ]


def test_it_reads_a_fixed_number_of_queries_however_long_the_history(
    make_customer, make_agent, queue, django_assert_max_num_queries
):
    dana = make_agent("dana")
    maya = make_customer("Maya Chen", consent="open")
    services.record_preference(
        customer=maya, preference="pace", value="brisk", source="caller", set_by=dana.user
    )
    now = timezone.now()
    calls = Call.objects.bulk_create(
        Call(
            telephony_call_id=f"c{n}",
            customer=maya,
            agent=dana,
            queue=queue,
            state="ended",
            connected_at=now - timedelta(minutes=n),
        )
        for n in range(2000)
    )
    CallNote.objects.bulk_create(
        CallNote(customer=maya, author=dana.user, call_id=calls[n].id, text=f"note {n}")
        for n in range(2000)
    )

    with django_assert_max_num_queries(3):
        caller = caller_context(from_e164=NUMBER, customer_ids=[maya.id])

    assert len(caller["customer"]["notes"]) == 5
    assert caller["customer"]["more_notes"] == 1995
    assert caller["customer"]["last_agent"]["display_name"] == "Dana"
    assert caller["customer"]["notes"][0]["author"] == "Dana"

    with django_assert_max_num_queries(2):
        more_notes(maya.id, caller["customer"]["notes"][-1]["id"], 20)


def test_reading_the_context_records_nothing(make_customer):
    maya = make_customer("Maya Chen")
    _context(maya)
    assert ContextAccess.objects.count() == 0


def test_the_number_finds_its_customers(make_customer):
    maya = make_customer("Maya Chen")
    leo = make_customer("Leo Chen")
    make_customer("Someone Else", phones=["+14155550999"])
    assert customer_ids_for_number(NUMBER) == [maya.id, leo.id]
    assert customer_ids_for_number("+19995550000") == []
