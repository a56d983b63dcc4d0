"""Privacy is table stakes: card numbers never stored or logged, every read audited, consent
honoured, and a customer can be exported and erased without changing queue figures."""

import io
import logging
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.db import connection, transaction
from django.db.models import Avg, Count, F
from django.db.utils import DatabaseError
from django.utils import timezone

from customers import services
from customers.audit import record_context_access
from customers.card_numbers import CardNumberFilter, mask_card_numbers, mask_card_numbers_in
from customers.models import CallNote, ContextAccess, Customer
from customers.selectors import customer_ids_for_number
from privacy import services as privacy_services
from routing.messages import caller_context
from routing.models import Call, Offer
from telephony.models import CallEvent
from tests.support.telephony import ringing

pytestmark = pytest.mark.django_db

NUMBER = "+14155550123"

CARDS = [
    ("4111111111111111", "************1111"),
    ("4111 1111 1111 1111", "**** **** **** 1111"),
    ("5555-5555-5555-4444", "****-****-****-4444"),
    ("Amex 3782 822463 10005 please", "Amex **** ****** *0005 please"),
    ("6011111111111117.", "************1117."),
    ("diners 3056 9309 0259 04", "diners **** **** **59 04"),
    ("3530-1113-3330-0000", "****-****-****-0000"),
    ("old visa 4222222222222", "old visa *********2222"),
    ("19 digits 6304 0000 0000 0000 018", "19 digits **** **** **** ***0 018"),
    ("ref 12 4012 8888 8888 1881, exp 12/27", "ref 12 **** **** **** 1881, exp 12/27"),
]

NEAR_MISSES = [
    "order 2024-000123457",
    "call me on +1 (415) 555-0123",
    "+44 20 7946 0958",
    "4111 1111 1111 1112",
    "4111 1111 1111",
    "41111111111111111111",
    "tracking 1Z999AA10123456784",
    "delivered 2026-11-23",
    "ISBN 978-0-306-40615-7",
    "order #100023456789012",
]


@pytest.mark.parametrize("text, masked", CARDS)
def test_card_numbers_are_masked_to_their_last_four_digits(text, masked):
    assert mask_card_numbers(text) == masked


# Spaces and dashes a word processor or a phone keyboard puts between the groups.
DISGUISED_CARDS = [
    ("4111\u00a01111\u00a01111\u00a01111", "****\u00a0****\u00a0****\u00a01111"),
    ("4111\u202f1111\u202f1111\u202f1111", "****\u202f****\u202f****\u202f1111"),
    ("4111\u20091111\u20091111\u20091111", "****\u2009****\u2009****\u20091111"),
    ("5555\u20135555\u20135555\u20134444", "****\u2013****\u2013****\u20134444"),
    ("5555 \u2014 5555 \u2014 5555 \u2014 4444", "**** \u2014 **** \u2014 **** \u2014 4444"),
    ("4111\u22121111\u22121111\u22121111", "****\u2212****\u2212****\u22121111"),
    ("4111\u200b1111\u200b1111\u200b1111", "****\u200b****\u200b****\u200b1111"),
]


@pytest.mark.parametrize("text, masked", DISGUISED_CARDS)
def test_card_numbers_grouped_with_unicode_spaces_or_dashes_are_masked(text, masked):
    assert mask_card_numbers(text) == masked


@pytest.mark.parametrize(
    "text", ["call +1\u00a0415\u00a0555\u00a00123", "2026\u201311\u201323", "+44\u202f20 7946 0958"]
)
def test_phone_numbers_and_dates_with_unicode_separators_are_kept(text):
    assert mask_card_numbers(text) == text


@pytest.mark.parametrize("text", NEAR_MISSES)
def test_numbers_that_are_not_cards_are_kept(text):
    assert mask_card_numbers(text) == text


def test_a_note_never_stores_a_card_number(make_customer):
    maya = make_customer("Maya Chen")
    note = services.add_note(
        customer=maya,
        author=None,
        text="She read out 4111-1111-1111-1111 by mistake",
        intent="pay with 5555 5555 5555 4444",
    )
    stored = CallNote.objects.values("text", "intent").get(id=note.id)
    assert stored == {
        "text": "She read out ****-****-****-1111 by mistake",
        "intent": "pay with **** **** **** 4444",
    }


def test_event_metadata_can_be_masked_before_storage():
    metadata = {"ivr": {"digits": "4111111111111111"}, "tags": ["ok", "5555-5555-5555-4444"]}
    assert mask_card_numbers_in(metadata) == {
        "ivr": {"digits": "************1111"},
        "tags": ["ok", "****-****-****-4444"],
    }


def test_a_card_number_used_as_a_key_is_masked_and_no_key_is_lost():
    metadata = {"4111 1111 1111 1111": "paid", "ivr": {"5555555555554444": 1, "x": 2}}
    assert mask_card_numbers_in(metadata) == {
        "**** **** **** 1111": "paid",
        "ivr": {"************4444": 1, "x": 2},
    }
    # Two cards masked alike stay two keys.
    assert len(mask_card_numbers_in({"4111111111111111": 1, "4012888888881111": 2})) == 2


def test_card_numbers_never_reach_the_logs():
    handler = next(
        handler
        for handler in logging.getLogger().handlers
        if any(isinstance(f, CardNumberFilter) for f in handler.filters)
    )
    stream = io.StringIO()
    original = handler.setStream(stream)
    try:
        log = logging.getLogger("routing.telephony")
        log.warning("caller typed %s into the IVR", "4111 1111 1111 1111")
        try:
            raise ValueError("bad card 5555555555554444")
        except ValueError:
            log.exception("failed")
    finally:
        handler.setStream(original)
    written = stream.getvalue()
    assert "**** **** **** 1111" in written
    assert "************4444" in written
    assert "4111 1111" not in written
    assert "5555555555554444" not in written


# Consent --------------------------------------------------------------------------------------


def test_closed_consent_hides_history_on_the_card_and_in_the_api(client, make_agent, make_customer):
    dana = make_agent("dana")
    maya = make_customer("Maya Chen", consent="closed")
    services.add_note(customer=maya, author=dana.user, text="Buying for her new baby")
    services.add_note(customer=maya, author=dana.user, text="Return pending", open_matter=True)
    call = Call.objects.create(
        telephony_call_id="CA1", customer=maya, agent=dana, state="connected"
    )

    card = caller_context(from_e164=NUMBER, customer_ids=[maya.id])
    client.force_login(dana.user)
    api = client.get(f"/api/customers/{maya.id}/").json()

    for shown in (card["customer"], api):
        assert shown["history_hidden"] is True
        assert [note["text"] for note in shown["notes"]] == ["Return pending"]
    notes = client.get(f"/api/customers/{maya.id}/notes/").json()["notes"]
    assert [note["text"] for note in notes] == ["Return pending"]
    assert call.id


# Who may see ----------------------------------------------------------------------------------


def test_an_agent_without_an_offer_for_the_customer_gets_403(client, make_agent, make_customer):
    dana = make_agent("dana")
    sam = make_agent("sam")
    maya = make_customer("Maya Chen")
    call = Call.objects.create(telephony_call_id="CA1", customer=maya, state="offered")
    Offer.objects.create(call=call, agent=sam, expires_at=timezone.now() + timedelta(seconds=15))
    client.force_login(dana.user)
    for path in ("", "notes/", "notes/more/", "export/"):
        assert client.get(f"/api/customers/{maya.id}/{path}").status_code == 403
    assert (
        client.patch(
            f"/api/customers/{maya.id}/", {"pace": "brisk"}, content_type="application/json"
        ).status_code
        == 403
    )
    assert ContextAccess.objects.count() == 0


def test_a_shared_number_lets_the_offered_agent_see_each_candidate(
    client, make_agent, make_customer
):
    dana = make_agent("dana")
    maya = make_customer("Maya Chen")
    leo = make_customer("Leo Chen")
    call = Call.objects.create(telephony_call_id="CA1", state="offered", from_e164=NUMBER)
    call.candidates.set([maya, leo])
    Offer.objects.create(call=call, agent=dana, expires_at=timezone.now() + timedelta(seconds=9))
    client.force_login(dana.user)
    assert client.get(f"/api/customers/{leo.id}/").status_code == 200


# Audit ----------------------------------------------------------------------------------------


def test_every_recorded_screen_pop_writes_one_audit_row(make_agent, make_customer):
    dana = make_agent("dana")
    maya = make_customer("Maya Chen")
    first = Call.objects.create(telephony_call_id="CA1", customer=maya)
    second = Call.objects.create(telephony_call_id="CA2", customer=maya)

    record_context_access(customer_ids=[maya.id], user=dana.user, reason="offer", call_id=first.id)
    record_context_access(customer_ids=[maya.id], user=dana.user, reason="offer", call_id=second.id)
    record_context_access(customer_ids=[], user=dana.user, reason="offer", call_id=second.id)

    rows = list(
        ContextAccess.objects.order_by("id").values("customer", "username", "reason", "call_id")
    )
    assert rows == [
        {"customer": maya.id, "username": "dana", "reason": "offer", "call_id": first.id},
        {"customer": maya.id, "username": "dana", "reason": "offer", "call_id": second.id},
    ]


def test_the_audit_log_is_append_only(make_agent, make_customer):
    dana = make_agent("dana")
    maya = make_customer("Maya Chen")
    call = Call.objects.create(telephony_call_id="CA1", customer=maya)
    (access,) = record_context_access(
        customer_ids=[maya.id], user=dana.user, reason="offer", call_id=call.id
    )

    access.reason = "lookup"
    with pytest.raises(PermissionError):
        access.save()
    with pytest.raises(PermissionError):
        access.delete()
    with pytest.raises(PermissionError):
        ContextAccess.objects.filter(id=access.id).update(reason="lookup")
    with pytest.raises(PermissionError):
        ContextAccess.objects.all().delete()
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM customers_contextaccess")
    # Removing the people and calls it names leaves the log as it was.
    dana.user.delete()
    call.delete()
    assert ContextAccess.objects.values_list("username", "reason").get() == ("dana", "offer")


def test_admins_read_the_audit_log_but_cannot_change_it(client, make_agent, make_customer):
    admin = User.objects.create_superuser("root", password="pw-root")
    dana = make_agent("dana")
    maya = make_customer("Maya Chen")
    call = Call.objects.create(telephony_call_id="CA1", customer=maya)
    (access,) = record_context_access(
        customer_ids=[maya.id], user=dana.user, reason="offer", call_id=call.id
    )
    client.force_login(admin)

    listing = client.get("/admin/customers/contextaccess/")
    assert listing.status_code == 200
    assert b"dana" in listing.content
    for search in ("dana", str(maya.id)):
        found = client.get("/admin/customers/contextaccess/", {"q": search})
        assert found.status_code == 200
        assert b"dana" in found.content
    page = client.get(f"/admin/customers/contextaccess/{access.id}/change/")
    assert page.status_code == 200
    assert b'name="_save"' not in page.content
    deleting = client.post(f"/admin/customers/contextaccess/{access.id}/delete/", {"post": "yes"})
    assert deleting.status_code == 403
    assert ContextAccess.objects.count() == 1


def test_an_admin_opening_a_customer_is_audited(client, make_customer):
    admin = User.objects.create_superuser("root", password="pw-root")
    maya = make_customer("Maya Chen")
    client.force_login(admin)
    assert client.get(f"/admin/customers/customer/{maya.id}/change/").status_code == 200
    assert ContextAccess.objects.values_list("username", "reason").get() == ("root", "admin")


# Export and erase -----------------------------------------------------------------------------


def test_the_export_holds_everything_including_who_looked(client, make_agent, make_customer):
    dana = make_agent("dana")
    staff = User.objects.create_user("admin", password="pw-admin", is_staff=True)
    maya = make_customer("Maya Chen", consent="closed", email="maya@example.com")
    call = Call.objects.create(telephony_call_id="CA1", customer=maya, agent=dana)
    services.add_note(customer=maya, author=dana.user, text="New baby", occasion="new baby")
    record_context_access(customer_ids=[maya.id], user=dana.user, reason="offer", call_id=call.id)
    client.force_login(staff)

    export = client.get(f"/api/customers/{maya.id}/export/").json()

    assert export["customer"]["name"] == "Maya Chen"
    assert export["customer"]["email"] == "maya@example.com"
    assert export["phones"] == [{"number": NUMBER, "label": ""}]
    # The export is everything held, closed consent or not.
    assert [(n["text"], n["occasion"]) for n in export["notes"]] == [("New baby", "new baby")]
    assert [c["call_id"] for c in export["calls"]] == ["CA1"]
    assert [(a["username"], a["reason"]) for a in export["context_accesses"]] == [
        ("dana", "offer"),
        ("admin", "export"),
    ]


def test_the_admin_export_action_is_audited(client, make_customer):
    admin = User.objects.create_superuser("root", password="pw-root")
    maya = make_customer("Maya Chen")
    client.force_login(admin)
    response = client.post(
        "/admin/customers/customer/",
        {"action": "export_as_json", "_selected_action": [maya.id]},
    )
    assert response.status_code == 200
    assert response.json()["customer"]["name"] == "Maya Chen"
    assert ContextAccess.objects.get().reason == "export"


def _queue_figures(queue):
    calls = Call.objects.filter(queue=queue)
    return {
        "by_state": dict(calls.values_list("state").annotate(n=Count("id")).order_by()),
        "answered": calls.filter(connected_at__isnull=False).count(),
        "by_agent": dict(calls.values_list("agent_id").annotate(n=Count("id")).order_by()),
        "customers": calls.values("customer").distinct().count(),
        "average_wait": calls.aggregate(wait=Avg(F("connected_at") - F("queued_at")))["wait"],
    }


def test_erasing_keeps_queue_figures_and_the_next_call_is_a_new_caller(
    client, queue, make_agent, make_customer
):
    dana = make_agent("dana")
    maya = make_customer("Maya Chen", consent="open", email="maya@example.com")
    services.record_preference(
        customer=maya, preference="pace", value="brisk", source="caller", set_by=dana.user
    )
    now = timezone.now()
    for n in range(3):
        call = Call.objects.create(
            telephony_call_id=f"CA{n}",
            customer=maya,
            agent=dana,
            queue=queue,
            state="ended",
            from_number="(415) 555-0123",
            from_e164=NUMBER,
            queued_at=now - timedelta(minutes=10 * n + 1),
            connected_at=now - timedelta(minutes=10 * n),
        )
        CallEvent.objects.create(
            webhook_id=f"msg_{n}",
            call=call,
            type="call.ringing",
            occurred_at=now,
            payload={"type": "call.ringing", "from": NUMBER, "metadata": {"crm": "Maya"}},
            # The last one recorded by the webhook's intake, its worker not yet done.
            fields_to_apply={"from_number": NUMBER, "to_number": "+18005550100"}
            if n == 2
            else None,
        )
        services.add_note(
            customer=maya, author=dana.user, call_id=call.id, text=f"note {n}", sizes="W 8"
        )
    before = _queue_figures(queue)
    staff = User.objects.create_user("admin", password="pw-admin", is_staff=True)
    client.force_login(staff)

    assert client.delete(f"/api/customers/{maya.id}/").status_code == 204

    assert _queue_figures(queue) == before
    erased = Customer.objects.get(id=maya.id)
    assert (erased.name, erased.email, erased.pace, erased.pace_set_by) == (
        "(erased)",
        "",
        "unknown",
        None,
    )
    assert not erased.phones.exists()
    assert set(CallNote.objects.values_list("text", "sizes")) == {("", "")}
    assert set(Call.objects.values_list("from_number", "from_e164")) == {("", "")}
    assert all(
        "from" not in event.payload and "metadata" not in event.payload
        for event in CallEvent.objects.all()
    )
    assert CallEvent.objects.get(webhook_id="msg_2").fields_to_apply == {
        "to_number": "+18005550100"
    }
    assert customer_ids_for_number(NUMBER) == []
    caller = caller_context(from_e164=NUMBER, customer_ids=customer_ids_for_number(NUMBER))
    assert caller["kind"] == "unknown"


def test_erasing_one_of_a_shared_line_leaves_the_other(make_customer):
    maya = make_customer("Maya Chen")
    leo = make_customer("Leo Chen")
    staff = User.objects.create_user("admin", is_staff=True)
    privacy_services.erase_customer(customer=maya, erased_by=staff)
    assert customer_ids_for_number(NUMBER) == [leo.id]


@pytest.mark.usefixtures("webhook_secret")
def test_a_card_number_in_event_metadata_is_never_stored(phone_system, queue):
    body = ringing("CA1", metadata={"ivr_digits": "4111 1111 1111 1111", "order": "100023456"})
    assert phone_system.post(body, webhook_id="msg_card").status_code == 202
    stored = CallEvent.objects.get(webhook_id="msg_card").payload["metadata"]
    assert stored == {"ivr_digits": "**** **** **** 1111", "order": "100023456"}


@pytest.mark.usefixtures("webhook_secret")
def test_a_card_number_in_disguise_or_as_a_key_in_event_metadata_is_never_stored(
    phone_system, queue
):
    metadata = {
        "ivr_digits": "4111\u00a01111\u00a01111\u00a01111",
        "said": "5555\u20135555\u20135555\u20134444",
        "cards": {"4012 8888 8888 1881": "declined"},
    }
    body = ringing("CA1", metadata=metadata)
    assert phone_system.post(body, webhook_id="msg_disguised").status_code == 202

    stored = CallEvent.objects.get(webhook_id="msg_disguised").payload["metadata"]
    assert stored == {
        "ivr_digits": "****\u00a0****\u00a0****\u00a01111",
        "said": "****\u2013****\u2013****\u20134444",
        "cards": {"**** **** **** 1881": "declined"},
    }


def test_a_typed_access_reason_never_stores_a_card_number(client, make_agent, make_customer):
    dana = make_agent("dana")
    maya = make_customer("Maya Chen", phones=(NUMBER,))
    client.force_login(dana.user)

    found = client.get(
        "/api/customers/",
        {"phone": NUMBER, "reason": "caller gave card 4111\u00a01111\u00a01111\u00a01111"},
    )
    read = client.get(f"/api/customers/{maya.id}/", {"reason": "refund to 5555-5555-5555-4444"})

    assert (found.status_code, read.status_code) == (200, 200)
    assert list(ContextAccess.objects.order_by("id").values_list("reason_text", flat=True)) == [
        "caller gave card ****\u00a0****\u00a0****\u00a01111",
        "refund to ****-****-****-4444",
    ]
