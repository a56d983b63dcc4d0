"""The customers REST API: create, read as consent and the call allow, notes, export, erase."""

import threading
import time
from datetime import timedelta

import pytest
from django.contrib.auth.models import Group, User
from django.db import connection, transaction
from django.utils import timezone

from customers import services
from customers.models import ContextAccess, Customer
from routing.models import Call, Offer

pytestmark = pytest.mark.django_db

NUMBER = "+14155550123"


@pytest.fixture
def staff(db):
    return User.objects.create_user("admin", password="pw-admin", is_staff=True)


@pytest.fixture
def supervisor(db):
    user = User.objects.create_user("sue", password="pw-sue")
    user.groups.add(Group.objects.get_or_create(name="supervisor")[0])
    return user


def _call(customer, *, agent=None, state="queued", queue=None, telephony_call_id="CA1", **fields):
    return Call.objects.create(
        telephony_call_id=telephony_call_id,
        customer=customer,
        agent=agent,
        state=state,
        queue=queue,
        from_e164=NUMBER,
        **fields,
    )


def _offer(call, agent, state="offered"):
    return Offer.objects.create(
        call=call, agent=agent, state=state, expires_at=timezone.now() + timedelta(seconds=15)
    )


def test_it_creates_a_customer_with_normalised_phones_and_recorded_preferences(client, staff):
    client.force_login(staff)
    response = client.post(
        "/api/customers/",
        {
            "name": "Maya Chen",
            "phones": ["(415) 555-0123", "+14155550123", "+44 20 7946 0958"],
            "email": "maya@example.com",
            "external_id": "crm-42",
            "pace": "brisk",
            "hold_ok": False,
            "preferred_channel": "text",
            "consent": "open",
        },
        content_type="application/json",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["phones"] == ["+14155550123", "+442079460958"]
    assert body["preferences"]["pace"]["source"] == "caller"
    assert body["preferences"]["pace"]["set_by"] == "admin"
    assert body["preferences"]["hold_tolerance"]["value"] == "avoid"
    customer = Customer.objects.get(external_id="crm-42")
    assert customer.consent == "open"
    assert customer.consent_set_by == staff


def test_it_names_the_bad_fields(client, staff):
    client.force_login(staff)
    response = client.post(
        "/api/customers/",
        {"name": "Maya", "phones": ["not a number"], "pace": "fast"},
        content_type="application/json",
    )
    assert response.status_code == 400
    assert set(response.json()["errors"]) == {"pace"}
    response = client.post(
        "/api/customers/", {"name": "Maya", "phones": ["nope"]}, content_type="application/json"
    )
    assert response.status_code == 400
    assert "phones" in response.json()["errors"]


@pytest.mark.django_db(transaction=True)
def test_two_creates_at_once_with_one_external_id_answer_a_4xx_naming_it(client, staff):
    created = threading.Event()

    def create_and_commit_a_moment_later():
        try:
            with transaction.atomic():
                services.create_customer(name="Maya Chen", phones=[], external_id="crm-42")
                created.set()
                # The API's create reads no such customer yet, and waits on the unique index.
                time.sleep(1)
        finally:
            connection.close()

    first = threading.Thread(target=create_and_commit_a_moment_later)
    first.start()
    assert created.wait(10)
    client.force_login(staff)

    second = client.post(
        "/api/customers/",
        {"name": "Maya C.", "phones": [], "external_id": "crm-42"},
        content_type="application/json",
    )
    first.join()

    assert second.status_code == 400
    assert list(second.json()["errors"]) == ["external_id"]
    assert Customer.objects.filter(external_id="crm-42").count() == 1


def test_an_agent_sees_the_customer_whose_call_is_ringing_for_them(
    client, make_agent, make_customer
):
    dana = make_agent("dana")
    maya = make_customer("Maya Chen", consent="open")
    call = _call(maya, state="offered")
    _offer(call, dana)
    client.force_login(dana.user)

    response = client.get(f"/api/customers/{maya.id}/")

    assert response.status_code == 200
    assert response.json()["name"] == "Maya Chen"
    access = ContextAccess.objects.get()
    assert (access.username, access.reason, access.call_id) == ("dana", "offer", call.id)


def test_an_agent_sees_the_customer_during_the_call_and_their_wrap_up_only(
    client, make_agent, make_customer
):
    dana = make_agent("dana", status="busy")
    maya = make_customer("Maya Chen")
    call = _call(maya, agent=dana, state="connected", connected_at=timezone.now())
    client.force_login(dana.user)
    assert client.get(f"/api/customers/{maya.id}/").status_code == 200

    Call.objects.filter(id=call.id).update(state="ended", ended_at=timezone.now())
    dana.status, dana.wrap_up_call = "wrap_up", call
    dana.save()
    assert client.get(f"/api/customers/{maya.id}/").status_code == 200

    dana.status, dana.wrap_up_call = "available", None
    dana.save()
    assert client.get(f"/api/customers/{maya.id}/").status_code == 403
    assert list(ContextAccess.objects.values_list("reason", flat=True)) == ["call", "call"]


def test_an_agent_without_the_call_needs_a_typed_reason_which_is_audited(
    client, make_agent, make_customer
):
    make_agent("dana")
    maya = make_customer("Maya Chen")
    client.force_login(User.objects.get(username="dana"))

    refused = client.get(f"/api/customers/{maya.id}/")
    assert refused.status_code == 403
    assert "reason" in refused.json()["detail"]
    assert ContextAccess.objects.count() == 0

    allowed = client.get(f"/api/customers/{maya.id}/", {"reason": "Caller asked by email"})
    assert allowed.status_code == 200
    access = ContextAccess.objects.get()
    assert (access.reason, access.reason_text) == ("lookup", "Caller asked by email")


def test_a_supervisor_opening_a_customer_is_audited_like_anyone(client, supervisor, make_customer):
    maya = make_customer("Maya Chen")
    client.force_login(supervisor)
    assert client.get(f"/api/customers/{maya.id}/").status_code == 403
    response = client.get(f"/api/customers/{maya.id}/", {"reason": "complaint follow-up"})
    assert response.status_code == 200
    assert ContextAccess.objects.get().username == "sue"


def test_staff_manage_and_their_reads_are_audited(client, staff, make_customer):
    maya = make_customer("Maya Chen")
    client.force_login(staff)
    assert client.get(f"/api/customers/{maya.id}/").status_code == 200
    assert ContextAccess.objects.get().reason == "api"


def test_a_user_who_is_neither_agent_nor_staff_cannot_look_up(client, make_customer):
    maya = make_customer("Maya Chen")
    client.force_login(User.objects.create_user("bot"))
    response = client.get(f"/api/customers/{maya.id}/", {"reason": "curious"})
    assert response.status_code == 403


def test_changing_consent_records_who_said_so(client, make_agent, make_customer):
    dana = make_agent("dana")
    maya = make_customer("Maya Chen", consent="closed")
    _call(maya, agent=dana, state="connected", connected_at=timezone.now())
    client.force_login(dana.user)

    response = client.patch(
        f"/api/customers/{maya.id}/",
        {"consent": "conditional", "pace": "brisk"},
        content_type="application/json",
    )

    assert response.status_code == 200, response.json()
    maya.refresh_from_db()
    assert (maya.consent, maya.consent_source, maya.consent_set_by) == (
        "conditional",
        "caller",
        dana.user,
    )
    assert maya.consent_set_at is not None
    assert response.json()["preferences"]["pace"]["set_by"] == "Dana"


def test_an_inferred_preference_is_recorded_as_inferred(client, make_agent, make_customer):
    dana = make_agent("dana")
    maya = make_customer("Maya Chen", consent="open")
    _call(maya, agent=dana, state="connected", connected_at=timezone.now())
    client.force_login(dana.user)
    response = client.patch(
        f"/api/customers/{maya.id}/",
        {"pace": "unhurried", "source": "agent"},
        content_type="application/json",
    )
    assert response.json()["preferences"]["pace"]["source"] == "agent"


def test_an_agent_leaves_a_note_with_context_on_their_call(client, make_agent, make_customer):
    dana = make_agent("dana")
    maya = make_customer("Maya Chen", consent="open")
    call = _call(maya, agent=dana, state="connected", connected_at=timezone.now())
    client.force_login(dana.user)

    response = client.post(
        f"/api/customers/{maya.id}/notes/",
        {
            "text": "Paid with 4111 1111 1111 1111, wants shoes for a first date",
            "call_id": "CA1",
            "context": {"occasion": "first date", "sizes": "W 8"},
        },
        content_type="application/json",
    )

    assert response.status_code == 201, response.json()
    note = response.json()
    assert note["text"] == "Paid with **** **** **** 1111, wants shoes for a first date"
    assert (note["occasion"], note["sizes"], note["call_id"]) == ("first date", "W 8", call.id)
    listed = client.get(f"/api/customers/{maya.id}/notes/").json()
    assert [n["id"] for n in listed["notes"]] == [note["id"]]


def test_a_note_on_an_unknown_call_is_refused(client, staff, make_customer):
    maya = make_customer("Maya Chen")
    client.force_login(staff)
    response = client.post(
        f"/api/customers/{maya.id}/notes/",
        {"text": "hello", "call_id": "nope"},
        content_type="application/json",
    )
    assert response.status_code == 400
    assert "call_id" in response.json()["errors"]


def test_more_notes_loads_on_demand(client, staff, make_customer):
    maya = make_customer("Maya Chen", consent="open")
    client.force_login(staff)
    ids = [
        client.post(
            f"/api/customers/{maya.id}/notes/", {"text": f"n{n}"}, content_type="application/json"
        ).json()["id"]
        for n in range(7)
    ]
    card = client.get(f"/api/customers/{maya.id}/").json()
    assert card["more_notes"] == 2
    more = client.get(
        f"/api/customers/{maya.id}/notes/more/", {"before": card["notes"][-1]["id"]}
    ).json()
    assert [n["id"] for n in more["notes"]] == [ids[1], ids[0]]
    bad = client.get(f"/api/customers/{maya.id}/notes/more/", {"before": "x"})
    assert bad.status_code == 400


def test_export_and_erase_are_for_staff(client, make_agent, make_customer):
    dana = make_agent("dana")
    maya = make_customer("Maya Chen")
    _call(maya, agent=dana, state="connected", connected_at=timezone.now())
    client.force_login(dana.user)
    assert client.get(f"/api/customers/{maya.id}/export/").status_code == 403
    assert client.delete(f"/api/customers/{maya.id}/").status_code == 403


def test_erase_returns_no_content_and_the_customer_is_gone(client, staff, make_customer):
    maya = make_customer("Maya Chen")
    client.force_login(staff)
    assert client.delete(f"/api/customers/{maya.id}/").status_code == 204
    assert client.get(f"/api/customers/{maya.id}/").status_code == 404
    assert client.delete(f"/api/customers/{maya.id}/").status_code == 404


def test_finding_by_phone_needs_a_reason_and_audits_each_result(client, make_agent, make_customer):
    dana = make_agent("dana")
    maya = make_customer("Maya Chen")
    make_customer("Someone Else", phones=["+14155550999"])
    client.force_login(dana.user)
    assert client.get("/api/customers/", {"phone": "(415) 555-0123"}).status_code == 403
    response = client.get(
        "/api/customers/", {"phone": "(415) 555-0123", "reason": "callback request"}
    )
    assert response.json()["results"] == [{"id": maya.id, "name": "Maya Chen", "consent": "closed"}]
    assert list(ContextAccess.objects.values_list("customer_id", "reason")) == [(maya.id, "lookup")]


def test_the_schema_documents_the_customers_api(client, staff):
    client.force_login(staff)
    schema = client.get("/api/schema/").content.decode()
    assert "/api/customers/{customer_id}/export/" in schema
