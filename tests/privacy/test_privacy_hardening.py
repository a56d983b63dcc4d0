"""Writes need the customer's call, and an erase is final: nothing racing it writes the data
back, and nothing it leaves behind (event payloads, admin history, typed reasons) names them."""

import threading
from datetime import timedelta

import pytest
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.auth.models import Group, User
from django.contrib.contenttypes.models import ContentType
from django.db import DatabaseError, connection, connections, transaction
from django.test import Client
from django.utils import timezone

from customers import services
from customers.audit import record_context_access
from customers.models import CallNote, ContextAccess, Customer, PhoneNumber
from privacy import services as privacy_services
from routing.models import Call, Offer
from telephony import applying, recording
from telephony.models import CallEvent
from tests.support.routing import wait_until
from tests.support.telephony import ringing

NUMBER = "+14155550123"


@pytest.fixture
def staff(db):
    return User.objects.create_user("admin", password="pw-admin", is_staff=True)


def _connected_call(customer, agent, telephony_call_id="CA1"):
    return Call.objects.create(
        telephony_call_id=telephony_call_id,
        customer=customer,
        agent=agent,
        state="connected",
        from_e164=NUMBER,
        connected_at=timezone.now(),
    )


# 3. A typed reason opens reading, never writing ----------------------------------------------


@pytest.mark.django_db
def test_a_typed_reason_lets_an_agent_read_but_not_change_a_customer(
    client, make_agent, make_customer
):
    dana = make_agent("dana")
    maya = make_customer("Maya Chen", consent="closed")
    client.force_login(dana.user)
    url = f"/api/customers/{maya.id}/?reason=anything"

    assert client.get(url).status_code == 200
    refused = client.patch(url, {"consent": "open"}, content_type="application/json")

    assert refused.status_code == 403
    assert "reason" in refused.json()["detail"]
    maya.refresh_from_db()
    assert (maya.consent, maya.consent_set_by) == ("closed", None)


@pytest.mark.django_db
def test_a_typed_reason_does_not_let_an_agent_leave_a_note(client, make_agent, make_customer):
    dana = make_agent("dana")
    maya = make_customer("Maya Chen")
    client.force_login(dana.user)

    refused = client.post(
        f"/api/customers/{maya.id}/notes/?reason=anything",
        {"text": "Prefers text"},
        content_type="application/json",
    )

    assert refused.status_code == 403
    assert not CallNote.objects.exists()


@pytest.mark.django_db
def test_an_agent_whose_offer_rings_for_someone_else_cannot_write(
    client, make_agent, make_customer
):
    dana = make_agent("dana")
    sam = make_agent("sam")
    maya = make_customer("Maya Chen")
    call = Call.objects.create(telephony_call_id="CA1", customer=maya, state="offered")
    Offer.objects.create(call=call, agent=sam, expires_at=timezone.now() + timedelta(seconds=15))
    client.force_login(dana.user)

    refused = client.patch(
        f"/api/customers/{maya.id}/?reason=covering for sam",
        {"pace": "brisk"},
        content_type="application/json",
    )

    assert refused.status_code == 403
    assert Customer.objects.get(id=maya.id).pace == "unknown"


@pytest.mark.django_db
def test_the_agent_on_the_call_and_a_supervisor_with_a_reason_may_write(
    client, make_agent, make_customer
):
    dana = make_agent("dana")
    maya = make_customer("Maya Chen")
    _connected_call(maya, dana)
    sue = User.objects.create_user("sue")
    sue.groups.add(Group.objects.get_or_create(name="supervisor")[0])

    client.force_login(dana.user)
    on_call = client.patch(
        f"/api/customers/{maya.id}/", {"pace": "brisk"}, content_type="application/json"
    )
    client.force_login(sue)
    supervising = client.patch(
        f"/api/customers/{maya.id}/?reason=complaint follow-up",
        {"email": "maya@example.com"},
        content_type="application/json",
    )

    assert (on_call.status_code, supervising.status_code) == (200, 200)
    maya.refresh_from_db()
    assert (maya.pace, maya.email) == ("brisk", "maya@example.com")


# 10. Erase cannot be undone or left incomplete -----------------------------------------------


def _backends_waiting_on_a_lock() -> int:
    """Other connections to this database blocked on a row lock right now."""
    with connection.cursor() as cursor:
        # Inside a transaction the statistics views are a snapshot unless cleared.
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
        )
        return cursor.fetchone()[0]


def _in_thread(request, results: list) -> threading.Thread:
    """Run `request(client)` on a connection of its own, as another server process would."""

    def run():
        try:
            results.append(request(Client()))
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def _while_erase_is_uncommitted(customer, staff, requests, *, blocked: int):
    """Erase `customer` in a transaction that commits only once `blocked` concurrent requests
    (each on its own connection) are waiting for its lock; their responses, in order."""
    responses: list[list] = [[] for _ in requests]
    with transaction.atomic():
        privacy_services.erase_customer(customer=customer, erased_by=staff)
        threads = [
            _in_thread(request, out) for request, out in zip(requests, responses, strict=True)
        ]
        wait_until(lambda: _backends_waiting_on_a_lock() >= blocked, timeout=30)
    for thread in threads:
        thread.join(timeout=30)
    return [out[0] for out in responses]


@pytest.mark.django_db(transaction=True)
@pytest.mark.timeout(90)
def test_a_change_racing_an_erase_cannot_write_the_name_back(make_agent, make_customer, staff):
    dana = make_agent("dana")
    maya = make_customer("Maya Chen", consent="open", email="maya@example.com")
    _connected_call(maya, dana)

    def change_pace(client):
        client.force_login(dana.user)
        return client.patch(
            f"/api/customers/{maya.id}/", {"pace": "brisk"}, content_type="application/json"
        )

    (response,) = _while_erase_is_uncommitted(maya, staff, [change_pace], blocked=1)

    assert response.status_code == 410, response.content
    assert "erased" in response.json()["detail"]
    erased = Customer.objects.get(id=maya.id)
    assert (erased.name, erased.email, erased.pace, erased.consent) == (
        "(erased)",
        "",
        "unknown",
        "closed",
    )
    assert erased.erased_at is not None


@pytest.mark.django_db(transaction=True)
@pytest.mark.timeout(90)
def test_a_note_racing_an_erase_is_refused_and_nothing_of_it_is_kept(
    make_agent, make_customer, staff
):
    dana = make_agent("dana")
    maya = make_customer("Maya Chen", consent="open")
    _connected_call(maya, dana)

    def leave_note(client):
        client.force_login(dana.user)
        return client.post(
            f"/api/customers/{maya.id}/notes/",
            {"text": "Maya's daughter is called Lily", "context": {"sizes": "W 8"}},
            content_type="application/json",
        )

    (response,) = _while_erase_is_uncommitted(maya, staff, [leave_note], blocked=1)

    assert response.status_code == 410, response.content
    assert not CallNote.objects.exclude(text="", sizes="").exists()


@pytest.mark.django_db(transaction=True)
@pytest.mark.timeout(90)
def test_two_changes_at_once_keep_each_others_fields(make_agent, make_customer):
    dana = make_agent("dana")
    maya = make_customer("Maya Chen", consent="open")
    _connected_call(maya, dana)

    def change(fields):
        def request(client):
            client.force_login(dana.user)
            return client.patch(
                f"/api/customers/{maya.id}/", fields, content_type="application/json"
            )

        return request

    responses: list[list] = [[], []]
    with transaction.atomic():
        Customer.objects.select_for_update().get(id=maya.id)
        threads = [
            _in_thread(change({"email": "maya@example.com"}), responses[0]),
            _in_thread(change({"preferred_channel": "text"}), responses[1]),
        ]
        wait_until(lambda: _backends_waiting_on_a_lock() >= 2, timeout=30)
    for thread in threads:
        thread.join(timeout=30)

    assert [out[0].status_code for out in responses] == [200, 200]
    maya.refresh_from_db()
    assert (maya.email, maya.preferred_channel) == ("maya@example.com", "text")


@pytest.mark.django_db
@pytest.mark.usefixtures("webhook_secret")
def test_erasing_keeps_only_the_routing_fields_of_stored_events(phone_system, queue, staff):
    body = ringing(
        "CA1",
        metadata={"crm_name": "Maya Chen"},
        caller_name="Maya Chen",
        caller_address="1 Main St",
    )
    assert phone_system.post(body, webhook_id="msg_1").status_code == 202
    maya = Customer.objects.create(name="Maya Chen")
    PhoneNumber.objects.create(customer=maya, number=NUMBER)
    Call.objects.filter(telephony_call_id="CA1").update(customer=maya)

    privacy_services.erase_customer(customer=maya, erased_by=staff)

    payload = CallEvent.objects.get(webhook_id="msg_1").payload
    assert set(payload) == {"type", "call_id", "occurred_at", "to"}
    assert "Maya" not in str(payload)


@pytest.mark.django_db
@pytest.mark.usefixtures("webhook_secret")
def test_an_event_applied_after_its_caller_was_erased_writes_no_number_back(
    phone_system, queue, staff, make_customer
):
    maya = make_customer("Maya Chen", phones=[NUMBER])
    body = ringing("CA1", caller_name="Maya Chen", **{"from": "(415) 555-0123"})
    # Recorded; the worker has not applied it yet when the customer is erased.
    assert phone_system.post(body, webhook_id="msg_1", work=False).status_code == 202

    privacy_services.erase_customer(customer=maya, erased_by=staff)
    phone_system.work()

    call = Call.objects.get(telephony_call_id="CA1")
    assert (call.state, call.from_number, call.from_e164, call.customer) == ("queued", "", "", None)
    stored = CallEvent.objects.values("payload", "fields_to_apply", "applied").get()
    assert stored["applied"] and stored["fields_to_apply"] is None
    assert set(stored["payload"]) == {"type", "call_id", "occurred_at", "to"}


@pytest.mark.django_db
@pytest.mark.usefixtures("webhook_secret")
def test_a_worker_that_read_the_event_just_before_the_erase_writes_no_number_back(
    phone_system, queue, staff, make_customer, monkeypatch
):
    maya = make_customer("Maya Chen", phones=[NUMBER])
    phone_system.post(ringing("CA1", **{"from": NUMBER}), webhook_id="msg_1", work=False)
    read_by_the_worker = recording.recorded_event

    def read_then_erased(event_id):
        event = read_by_the_worker(event_id)
        privacy_services.erase_customer(customer=maya, erased_by=staff)
        return event

    monkeypatch.setattr(recording, "recorded_event", read_then_erased)
    phone_system.work()
    monkeypatch.setattr(recording, "recorded_event", read_by_the_worker)

    call = Call.objects.get(telephony_call_id="CA1")
    assert (call.from_number, call.from_e164, call.customer) == ("", "", None)
    # Still to apply, without the number: beat's task for lost events applies it.
    assert "from_number" not in CallEvent.objects.get().fields_to_apply
    applying.apply_and_route(CallEvent.objects.get().id)
    call = Call.objects.get(telephony_call_id="CA1")
    assert (call.state, call.from_number, call.customer) == ("queued", "", None)


@pytest.mark.django_db
@pytest.mark.usefixtures("webhook_secret")
def test_an_event_still_to_apply_keeps_no_erased_number(phone_system, queue, staff, make_customer):
    maya = make_customer("Maya Chen", phones=[NUMBER])
    phone_system.post(ringing("CA1", **{"from": NUMBER}), webhook_id="msg_1", work=False)
    phone_system.post(ringing("CA2", **{"from": "+14155550999"}), webhook_id="msg_2", work=False)

    privacy_services.erase_customer(customer=maya, erased_by=staff)

    kept = dict(CallEvent.objects.values_list("webhook_id", "fields_to_apply"))
    assert "from_number" not in kept["msg_1"]
    assert NUMBER not in str(CallEvent.objects.get(webhook_id="msg_1").payload)
    # Another caller's event is theirs to keep.
    assert kept["msg_2"]["from_number"] == "+14155550999"


@pytest.mark.django_db
def test_erasing_removes_the_name_and_numbers_from_the_admin_history(make_customer, staff):
    maya = make_customer("Maya Chen")
    phone = maya.phones.get()
    LogEntry.objects.log_actions(
        user_id=staff.id,
        queryset=[maya],
        action_flag=CHANGE,
        change_message=[
            {"changed": {"fields": ["Name"]}},
            {"added": {"name": "phone number", "object": NUMBER}},
        ],
    )
    LogEntry.objects.log_actions(
        user_id=staff.id, queryset=[phone], action_flag=CHANGE, change_message="Changed number."
    )

    privacy_services.erase_customer(customer=maya, erased_by=staff)

    entries = LogEntry.objects.order_by("id")
    assert [entry.object_repr for entry in entries] == ["(erased)", "(erased)"]
    assert "Maya" not in str([entry.change_message for entry in entries])
    assert NUMBER not in str([entry.change_message for entry in entries])
    assert entries[0].get_change_message() == ("Changed Name. Added phone number “(erased)”.")
    assert entries[0].content_type == ContentType.objects.get_for_model(Customer)


@pytest.mark.django_db
def test_erasing_masks_the_typed_reasons_and_the_log_stays_append_only(
    make_agent, make_customer, staff
):
    dana = make_agent("dana")
    maya = make_customer("Maya Chen")
    leo = make_customer("Leo Chen", phones=["+14155550999"])
    record_context_access(
        customer_ids=[maya.id], user=dana.user, reason="lookup", reason_text="Maya Chen's refund"
    )
    record_context_access(customer_ids=[maya.id], user=dana.user, reason="offer", call_id=7)
    record_context_access(
        customer_ids=[leo.id], user=dana.user, reason="lookup", reason_text="Leo's refund"
    )

    privacy_services.erase_customer(customer=maya, erased_by=staff)

    rows = ContextAccess.objects.order_by("id").values_list(
        "customer_id", "username", "reason", "reason_text", "call_id"
    )
    assert list(rows) == [
        (maya.id, "dana", "lookup", "(erased)", None),
        (maya.id, "dana", "offer", "", 7),
        (leo.id, "dana", "lookup", "Leo's refund", None),
    ]
    for statement in (
        # A customer still held keeps their typed reasons.
        f"UPDATE customers_contextaccess SET reason_text = '(erased)' WHERE customer_id = {leo.id}",
        # Masking changes the typed reason and nothing else.
        "UPDATE customers_contextaccess SET reason_text = '(erased)', username = 'x' "
        f"WHERE customer_id = {maya.id}",
        f"UPDATE customers_contextaccess SET reason_text = 'edited' WHERE customer_id = {maya.id}",
        f"DELETE FROM customers_contextaccess WHERE customer_id = {maya.id}",
    ):
        with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(statement)
    assert ContextAccess.objects.filter(customer_id=leo.id).get().reason_text == "Leo's refund"


@pytest.mark.django_db
def test_writing_to_an_erased_customer_is_refused(make_customer, staff):
    maya = make_customer("Maya Chen")
    privacy_services.erase_customer(customer=maya, erased_by=staff)
    with pytest.raises(services.CustomerErased):
        services.add_note(customer=maya, author=staff, text="too late")
    with pytest.raises(services.CustomerErased):
        services.update_customer(customer=maya, changed_by=staff, name="Maya Chen")
    with pytest.raises(services.CustomerErased):
        privacy_services.erase_customer(customer=maya, erased_by=staff)
