"""The inbound webhook: signatures, idempotency, validation, callers and queues."""

import json
import time
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth.models import User
from django.db.models import F
from rest_framework.authtoken.models import Token

from routing import router
from routing.models import Call, Queue
from routing.router import LOST_AFTER
from telephony.models import CallEvent
from telephony.signing import sign, signed_request_content
from tests.routing_helpers import tasks_published
from tests.telephony_support import (  # noqa: F401
    EVENTS_URL,
    event,
    new_secret,
    post_event,
    ringing,
    signed_headers,
    webhook_secret,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("webhook_secret")]


def test_it_accepts_a_signed_ringing_call_and_queues_it(client, queue):
    response = post_event(client, ringing("CA1"), webhook_id="msg_1")

    assert response.status_code == 202
    assert response.json() == {"status": "accepted", "duplicate": False}
    call = Call.objects.get(telephony_call_id="CA1")
    assert (call.state, call.queue, call.from_e164) == ("queued", queue, "+14155550123")
    assert call.queued_at is not None
    assert CallEvent.objects.get(webhook_id="msg_1").call == call


def test_it_hands_the_queued_call_to_the_router_after_commit(
    client, queue, django_capture_on_commit_callbacks
):
    with (
        tasks_published() as published,
        django_capture_on_commit_callbacks(execute=True) as callbacks,
    ):
        response = post_event(client, ringing("CA1"))

    assert response.status_code == 202
    assert len(callbacks) == 1
    # Published to the real test broker by the on-commit hand-off.
    call = Call.objects.get(telephony_call_id="CA1")
    assert published == [("routing.route_call", (call.pk,))]


def test_it_accepts_any_secret_of_a_rotation(client, settings, queue):
    old, new = new_secret(), new_secret()
    settings.TELEPHONY_WEBHOOK_SECRET = [old]
    body = json.dumps(ringing("CA1"))
    headers = signed_headers(body)
    settings.TELEPHONY_WEBHOOK_SECRET = [new, old]

    response = client.generic("POST", EVENTS_URL, body, content_type="application/json", **headers)

    assert response.status_code == 202


def _tampered(headers, body):
    return headers, body.replace("CA1", "CA2")


def _header(name, value):
    def change(headers, body):
        return {**headers, name: value}, body

    return change


def _without(name):
    def change(headers, body):
        return {key: value for key, value in headers.items() if key != name}, body

    return change


def _signed_at(seconds_from_now):
    def change(headers, body):
        timestamp = int(time.time()) + seconds_from_now
        signed = sign(body=body, msg_id="msg_x", timestamp=timestamp)
        return {
            "HTTP_WEBHOOK_ID": "msg_x",
            "HTTP_WEBHOOK_TIMESTAMP": str(timestamp),
            "HTTP_WEBHOOK_SIGNATURE": signed["webhook-signature"],
        }, body

    return change


@pytest.mark.parametrize(
    "spoil",
    [
        _tampered,
        _without("HTTP_WEBHOOK_ID"),
        _without("HTTP_WEBHOOK_TIMESTAMP"),
        _without("HTTP_WEBHOOK_SIGNATURE"),
        _header("HTTP_WEBHOOK_ID", "msg_other"),
        _header("HTTP_WEBHOOK_SIGNATURE", "v1,bm90IGEgc2lnbmF0dXJl"),
        _header("HTTP_WEBHOOK_SIGNATURE", "v1,***"),
        _header("HTTP_WEBHOOK_SIGNATURE", "v1"),
        _header("HTTP_WEBHOOK_SIGNATURE", "v1,a,b"),
        _header("HTTP_WEBHOOK_TIMESTAMP", "yesterday"),
        _header("HTTP_WEBHOOK_TIMESTAMP", "1e400"),
        _signed_at(-6 * 60),
        _signed_at(+6 * 60),
    ],
    ids=[
        "tampered-body",
        "no-id",
        "no-timestamp",
        "no-signature",
        "other-id",
        "wrong-signature",
        "bad-base64",
        "no-comma",
        "two-commas",
        "timestamp-not-a-number",
        "timestamp-absurd",
        "stale",
        "future",
    ],
)
def test_it_refuses_every_kind_of_bad_signature(client, queue, spoil):
    body = json.dumps(ringing("CA1"))
    headers, body = spoil(signed_headers(body), body)

    response = client.generic("POST", EVENTS_URL, body, content_type="application/json", **headers)

    assert response.status_code == 401
    assert response.json()["detail"]
    assert not CallEvent.objects.exists()


def test_it_refuses_a_signature_made_with_another_secret(client, settings, queue):
    body = json.dumps(ringing("CA1"))
    settings.TELEPHONY_WEBHOOK_SECRET = [new_secret()]
    headers = signed_headers(body)
    settings.TELEPHONY_WEBHOOK_SECRET = [new_secret()]

    response = client.generic("POST", EVENTS_URL, body, content_type="application/json", **headers)

    assert response.status_code == 401


def test_it_refuses_everything_when_no_secret_is_configured(client, settings, queue):
    body = json.dumps(ringing("CA1"))
    headers = signed_headers(body)
    settings.TELEPHONY_WEBHOOK_SECRET = []

    response = client.generic("POST", EVENTS_URL, body, content_type="application/json", **headers)

    assert response.status_code == 401


def test_it_treats_a_repeated_webhook_id_as_already_done(client, queue):
    ring = ringing("CA1")
    first = post_event(client, ring, webhook_id="msg_1")
    again = post_event(client, ring, webhook_id="msg_1")

    assert (first.status_code, again.status_code) == (202, 202)
    assert again.json()["duplicate"] is True
    assert CallEvent.objects.count() == 1
    assert Call.objects.get().state == "queued"


def test_it_names_every_bad_field(client, queue):
    response = post_event(
        client,
        {"type": "call.ringing", "call_id": "x" * 129, "occurred_at": "yesterday", "to": 5},
    )

    assert response.status_code == 400
    body = response.json()
    assert body["detail"]
    assert set(body["errors"]) == {"call_id", "occurred_at", "from"}


def test_it_names_the_fields_each_event_type_requires(client):
    response = post_event(client, {"type": "call.answered", "call_id": "CA1"})

    assert response.status_code == 400
    assert set(response.json()["errors"]) == {"occurred_at", "agent"}


def test_it_refuses_an_unknown_type_and_reason(client):
    response = post_event(client, event("call.exploded", "CA1", reason="bored"))

    assert response.status_code == 400
    assert set(response.json()["errors"]) == {"type", "reason"}


def test_it_wants_an_offset_on_occurred_at(client, queue):
    response = post_event(client, ringing("CA1", occurred_at="2026-11-23T17:00:00"))

    assert response.status_code == 400
    assert set(response.json()["errors"]) == {"occurred_at"}


@pytest.mark.parametrize(
    "body",
    ['{"type": ', "[1, 2]", '"call.ringing"', '{"type": NaN}', '{"a": 1e999}', "\ufeff{}"],
)
def test_it_refuses_a_body_that_is_not_one_json_object(client, body):
    response = post_event(client, body)

    assert response.status_code == 400
    assert response.json()["errors"]


def test_it_refuses_text_that_postgres_cannot_store(client, queue):
    response = post_event(client, '{"type": "call.ringing", "note\\u0000": "\\ud800"}')

    assert response.status_code == 400
    assert "note\\x00" in response.json()["errors"]


def test_it_refuses_a_body_over_64_kib(client, queue):
    payload = ringing("CA1", metadata={"padding": "x" * 65 * 1024})

    response = post_event(client, payload)

    assert response.status_code == 413
    assert not CallEvent.objects.exists()


def test_it_refuses_a_declared_length_over_64_kib_without_reading_it(client):
    response = post_event(client, ringing("CA1"), CONTENT_LENGTH=str(10 * 1024 * 1024))

    assert response.status_code == 413


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "application/json; charset=latin-1", ""],
)
def test_it_refuses_what_is_not_json(client, content_type):
    body = json.dumps(ringing("CA1"))

    response = client.generic(
        "POST", EVENTS_URL, body, content_type=content_type, **signed_headers(body)
    )

    assert response.status_code == 415


def test_it_accepts_unknown_fields_and_keeps_them_with_the_event(client, queue):
    payload = ringing("CA1", metadata={"trunk": 7}, carrier="acme")

    response = post_event(client, payload, webhook_id="msg_1")

    assert response.status_code == 202
    assert CallEvent.objects.get(webhook_id="msg_1").payload == payload


def test_it_needs_no_session_or_csrf_token(queue):
    from django.test import Client

    browser = Client(enforce_csrf_checks=True)
    browser.force_login(User.objects.create_user("sam", password="pw"))

    assert post_event(browser, ringing("CA1")).status_code == 202


def test_it_matches_the_one_customer_with_the_number(client, queue, make_customer):
    maya = make_customer("Maya", phones=["+14155550123"])

    post_event(client, ringing("CA1", **{"from": "(415) 555-0123"}))

    call = Call.objects.get()
    assert (call.customer, list(call.candidates.all())) == (maya, [])


def test_it_keeps_every_customer_of_a_shared_number_as_candidates(client, queue, make_customer):
    maya = make_customer("Maya", phones=["+14155550123"])
    leo = make_customer("Leo", phones=["+14155550123"])

    post_event(client, ringing("CA1"))

    call = Call.objects.get()
    assert call.customer is None
    assert set(call.candidates.all()) == {maya, leo}


def test_it_takes_an_unknown_number_as_an_unknown_caller(client, queue, make_customer):
    make_customer("Maya", phones=["+14155550199"])

    post_event(client, ringing("CA1"))

    call = Call.objects.get()
    assert (call.customer, call.candidates.count(), call.state) == (None, 0, "queued")


def test_it_keeps_a_number_it_cannot_normalise_as_given(client, queue):
    post_event(client, ringing("CA1", **{"from": "anonymous"}))

    call = Call.objects.get()
    assert (call.from_number, call.from_e164, call.customer) == ("anonymous", "", None)


def test_it_lets_the_queue_slug_override_the_dialled_number(client, queue):
    vip = Queue.objects.create(slug="vip", name="VIP")

    post_event(client, ringing("CA1", queue="vip"))

    assert Call.objects.get().queue == vip


def test_it_sends_an_unknown_dialled_number_to_the_default_queue(client, settings):
    settings.TELEPHONY_DEFAULT_QUEUE = "front-desk"

    response = post_event(client, ringing("CA1", to="+18005550999", queue="nope"))

    assert response.status_code == 202
    call = Call.objects.get()
    assert (call.queue.slug, call.state) == ("front-desk", "queued")


def test_a_ringing_call_takes_few_queries(
    client, queue, make_customer, django_assert_max_num_queries
):
    make_customer("Maya", phones=["+14155550123"])

    with django_assert_max_num_queries(9):
        assert post_event(client, ringing("CA1")).status_code == 202


def _get_call(client, call_id, **headers):
    return client.get(f"/api/telephony/calls/{call_id}/", **headers)


def pull_headers(call_id: str) -> dict[str, str]:
    return signed_headers(
        signed_request_content(method="GET", path=f"/api/telephony/calls/{call_id}/")
    )


def test_a_signed_pull_returns_the_state_and_agent_to_connect(client, queue, make_agent):
    make_agent("dana", extension="1001")
    post_event(client, ringing("CA1"))
    post_event(client, event("call.answered", "CA1", agent="1001"))

    response = _get_call(client, "CA1", **pull_headers("CA1"))

    assert response.status_code == 200
    assert response.json() | {"decision_id": None} == {
        "call_id": "CA1",
        "state": "connected",
        "queue": "loyalty",
        "agent": "1001",
        "decision_id": None,
    }


def test_a_pull_with_an_api_token_is_allowed(client, queue):
    post_event(client, ringing("CA1"))
    admin = User.objects.create_superuser("root", password="pw")
    token = Token.objects.create(user=admin)

    response = _get_call(client, "CA1", HTTP_AUTHORIZATION=f"Token {token.key}")

    assert (response.status_code, response.json()["agent"]) == (200, None)


def test_a_pull_without_credentials_or_with_a_bad_signature_is_refused(client, queue):
    post_event(client, ringing("CA1"))
    stale = sign(body="", timestamp=int(time.time()) - 600)

    assert _get_call(client, "CA1").status_code == 401
    assert _get_call(client, "CA1", **signed_headers("x")).status_code == 401
    assert _get_call(client, "CA1", **signed_headers("")).status_code == 401
    assert (
        _get_call(
            client,
            "CA1",
            HTTP_WEBHOOK_ID=stale["webhook-id"],
            HTTP_WEBHOOK_TIMESTAMP=stale["webhook-timestamp"],
            HTTP_WEBHOOK_SIGNATURE=stale["webhook-signature"],
        ).status_code
        == 401
    )


@pytest.mark.parametrize("call_id", ["nope", "%00", "x" * 300])
def test_a_pull_for_an_unknown_call_is_not_found(client, call_id):
    path_call_id = call_id.replace("%00", "\x00")
    assert _get_call(client, call_id, **pull_headers(path_call_id)).status_code == 404


def test_the_schema_describes_the_webhook_and_its_errors(client):
    schema = client.get("/api/schema/?format=json").json()

    operation = schema["paths"]["/api/telephony/events/"]["post"]
    assert set(operation["responses"]) == {"202", "400", "401", "409", "413", "415", "429"}
    assert {p["name"] for p in operation["parameters"]} >= {
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
    }


def test_it_accepts_a_timestamp_within_five_minutes(client, queue):
    body = json.dumps(ringing("CA1", occurred_at=datetime.now(tz=UTC) - timedelta(hours=1)))
    signed = sign(body=body, msg_id="msg_1", timestamp=int(time.time()) - 4 * 60)

    response = client.generic(
        "POST",
        EVENTS_URL,
        body,
        content_type="application/json",
        HTTP_WEBHOOK_ID="msg_1",
        HTTP_WEBHOOK_TIMESTAMP=signed["webhook-timestamp"],
        HTTP_WEBHOOK_SIGNATURE=signed["webhook-signature"],
    )

    assert response.status_code == 202


def test_a_call_whose_hand_off_never_reached_the_broker_is_routed_by_the_sweeper(
    client, queue, make_agent
):
    dana = make_agent("dana", status="available")
    # This test's transaction never commits, so the on-commit hand-off is never published: the
    # call is in the state a broker outage leaves it in.
    with tasks_published() as published:
        assert post_event(client, ringing("CA1")).status_code == 202
    assert published == []
    call = Call.objects.get(telephony_call_id="CA1")
    assert (call.state, call.decisions.count()) == ("queued", 0)

    # Once the broker is back, beat runs the sweeper, which routes what is owed a decision.
    Call.objects.filter(pk=call.pk).update(queued_at=F("queued_at") - LOST_AFTER)
    router.sweep()

    call.refresh_from_db()
    assert (call.state, call.offers.get().agent) == ("offered", dana)
