"""The inbound webhook, as production serves it (the ASGI application, the intake, then a
worker): signatures, idempotency, validation, callers and queues."""

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
from telephony import applying
from telephony.models import CallEvent
from telephony.signing import sign
from tests.support.routing import tasks_published
from tests.support.telephony import (
    as_test_client_headers,
    event,
    new_secret,
    ringing,
    signed_headers,
    signed_pull_headers,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("webhook_secret")]


def test_it_accepts_a_signed_ringing_call_and_queues_it(phone_system, queue):
    response = phone_system.post(ringing("CA1"), webhook_id="msg_1")

    assert response.status_code == 202
    assert response.json() == {"status": "accepted", "duplicate": False}
    call = Call.objects.get(telephony_call_id="CA1")
    assert (call.state, call.queue, call.from_e164) == ("queued", queue, "+14155550123")
    assert call.queued_at is not None
    assert CallEvent.objects.get(webhook_id="msg_1").call == call


def test_the_worker_that_queues_the_call_routes_it_too(phone_system, queue, make_agent):
    dana = make_agent("dana", status="available")

    with tasks_published() as published:
        response = phone_system.post(ringing("CA1"))

    assert response.status_code == 202
    call = Call.objects.get(telephony_call_id="CA1")
    assert (call.state, call.offers.get().agent) == ("offered", dana)
    # No second trip through the broker: the task that applied the event routed the call.
    assert "routing.route_call" not in [name for name, _ in published]


def test_it_accepts_any_secret_of_a_rotation(phone_system, settings, queue):
    old, new = new_secret(), new_secret()
    settings.TELEPHONY_WEBHOOK_SECRET = [old]
    body = json.dumps(ringing("CA1"))
    headers = signed_headers(body)
    settings.TELEPHONY_WEBHOOK_SECRET = [new, old]

    response = phone_system.send(body, headers)

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
            "content-type": "application/json",
            "webhook-id": "msg_x",
            "webhook-timestamp": str(timestamp),
            "webhook-signature": signed["webhook-signature"],
        }, body

    return change


@pytest.mark.parametrize(
    "spoil",
    [
        _tampered,
        _without("webhook-id"),
        _without("webhook-timestamp"),
        _without("webhook-signature"),
        _header("webhook-id", "msg_other"),
        _header("webhook-signature", "v1,bm90IGEgc2lnbmF0dXJl"),
        _header("webhook-signature", "v1,***"),
        _header("webhook-signature", "v1"),
        _header("webhook-signature", "v1,a,b"),
        _header("webhook-timestamp", "yesterday"),
        _header("webhook-timestamp", "1e400"),
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
def test_it_refuses_every_kind_of_bad_signature(phone_system, queue, spoil):
    body = json.dumps(ringing("CA1"))
    headers, body = spoil(signed_headers(body), body)

    response = phone_system.send(body, headers)

    assert response.status_code == 401
    assert response.json()["detail"]
    assert not CallEvent.objects.exists()


def test_it_refuses_a_signature_made_with_another_secret(phone_system, settings, queue):
    body = json.dumps(ringing("CA1"))
    settings.TELEPHONY_WEBHOOK_SECRET = [new_secret()]
    headers = signed_headers(body)
    settings.TELEPHONY_WEBHOOK_SECRET = [new_secret()]

    response = phone_system.send(body, headers)

    assert response.status_code == 401


def test_it_refuses_everything_when_no_secret_is_configured(phone_system, settings, queue):
    body = json.dumps(ringing("CA1"))
    headers = signed_headers(body)
    settings.TELEPHONY_WEBHOOK_SECRET = []

    response = phone_system.send(body, headers)

    assert response.status_code == 401


def test_it_treats_a_repeated_webhook_id_as_already_done(phone_system, queue):
    ring = ringing("CA1")
    first = phone_system.post(ring, webhook_id="msg_1")
    again = phone_system.post(ring, webhook_id="msg_1")

    assert (first.status_code, again.status_code) == (202, 202)
    assert again.json()["duplicate"] is True
    assert CallEvent.objects.count() == 1
    assert Call.objects.get().state == "queued"


def test_it_names_every_bad_field(phone_system, queue):
    response = phone_system.post(
        {"type": "call.ringing", "call_id": "x" * 129, "occurred_at": "yesterday", "to": 5},
    )

    assert response.status_code == 400
    body = response.json()
    assert body["detail"]
    assert set(body["errors"]) == {"call_id", "occurred_at", "from"}


def test_it_names_the_fields_each_event_type_requires(phone_system):
    response = phone_system.post({"type": "call.answered", "call_id": "CA1"})

    assert response.status_code == 400
    assert set(response.json()["errors"]) == {"occurred_at", "agent"}


def test_it_refuses_an_unknown_type_and_reason(phone_system):
    response = phone_system.post(event("call.exploded", "CA1", reason="bored"))

    assert response.status_code == 400
    assert set(response.json()["errors"]) == {"type", "reason"}


def test_it_wants_an_offset_on_occurred_at(phone_system, queue):
    response = phone_system.post(ringing("CA1", occurred_at="2026-11-23T17:00:00"))

    assert response.status_code == 400
    assert set(response.json()["errors"]) == {"occurred_at"}


@pytest.mark.parametrize(
    "body",
    ['{"type": ', "[1, 2]", '"call.ringing"', '{"type": NaN}', '{"a": 1e999}', "\ufeff{}"],
)
def test_it_refuses_a_body_that_is_not_one_json_object(phone_system, body):
    response = phone_system.post(body)

    assert response.status_code == 400
    assert response.json()["errors"]


def test_it_refuses_text_that_postgres_cannot_store(phone_system, queue):
    response = phone_system.post('{"type": "call.ringing", "note\\u0000": "\\ud800"}')

    assert response.status_code == 400
    assert "note\\x00" in response.json()["errors"]


def test_it_refuses_a_body_over_64_kib(phone_system, queue):
    payload = ringing("CA1", metadata={"padding": "x" * 65 * 1024})

    response = phone_system.post(payload)

    assert response.status_code == 413
    assert not CallEvent.objects.exists()


def test_it_refuses_a_declared_length_over_64_kib_without_reading_it(phone_system):
    response = phone_system.post(ringing("CA1"), headers={"content-length": str(10 * 1024 * 1024)})

    assert response.status_code == 413


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "application/json; charset=latin-1", ""],
)
def test_it_refuses_what_is_not_json(phone_system, content_type):
    body = json.dumps(ringing("CA1"))

    response = phone_system.send(body, {**signed_headers(body), "content-type": content_type})

    assert response.status_code == 415


def test_it_accepts_unknown_fields_and_keeps_them_with_the_event(phone_system, queue):
    payload = ringing("CA1", metadata={"trunk": 7}, carrier="acme")

    response = phone_system.post(payload, webhook_id="msg_1")

    assert response.status_code == 202
    assert CallEvent.objects.get(webhook_id="msg_1").payload == payload


def test_it_needs_no_session_or_csrf_token(phone_system, queue):
    assert phone_system.post(ringing("CA1"), headers={"cookie": "sessionid=x"}).status_code == 202


def test_it_matches_the_one_customer_with_the_number(phone_system, queue, make_customer):
    maya = make_customer("Maya", phones=["+14155550123"])

    phone_system.post(ringing("CA1", **{"from": "(415) 555-0123"}))

    call = Call.objects.get()
    assert (call.customer, list(call.candidates.all())) == (maya, [])


def test_it_keeps_every_customer_of_a_shared_number_as_candidates(
    phone_system, queue, make_customer
):
    maya = make_customer("Maya", phones=["+14155550123"])
    leo = make_customer("Leo", phones=["+14155550123"])

    phone_system.post(ringing("CA1"))

    call = Call.objects.get()
    assert call.customer is None
    assert set(call.candidates.all()) == {maya, leo}


def test_it_takes_an_unknown_number_as_an_unknown_caller(phone_system, queue, make_customer):
    make_customer("Maya", phones=["+14155550199"])

    phone_system.post(ringing("CA1"))

    call = Call.objects.get()
    assert (call.customer, call.candidates.count(), call.state) == (None, 0, "queued")


def test_it_keeps_a_number_it_cannot_normalise_as_given(phone_system, queue):
    phone_system.post(ringing("CA1", **{"from": "anonymous"}))

    call = Call.objects.get()
    assert (call.from_number, call.from_e164, call.customer) == ("anonymous", "", None)


def test_it_lets_the_queue_slug_override_the_dialled_number(phone_system, queue):
    vip = Queue.objects.create(slug="vip", name="VIP")

    phone_system.post(ringing("CA1", queue="vip"))

    assert Call.objects.get().queue == vip


def test_it_sends_an_unknown_dialled_number_to_the_default_queue(phone_system, settings):
    settings.TELEPHONY_DEFAULT_QUEUE = "front-desk"

    response = phone_system.post(ringing("CA1", to="+18005550999", queue="nope"))

    assert response.status_code == 202
    call = Call.objects.get()
    assert (call.queue.slug, call.state) == ("front-desk", "queued")


def test_a_ringing_call_takes_few_queries(
    phone_system, queue, make_customer, django_assert_max_num_queries
):
    make_customer("Maya", phones=["+14155550123"])

    # The worker's share (the intake's one statement runs on its own connection): the recorded
    # event read, the call locked with its caller and queue, the event marked applied with the
    # call saved; then the router's read and its decision; two transactions.
    with django_assert_max_num_queries(11):
        assert phone_system.post(ringing("CA1")).status_code == 202


def _get_call(client, call_id, **headers):
    return client.get(f"/api/telephony/calls/{call_id}/", **headers)


def pull_headers(call_id: str) -> dict[str, str]:
    return signed_pull_headers(f"/api/telephony/calls/{call_id}/")


def test_a_signed_pull_returns_the_state_and_agent_to_connect(
    client, phone_system, queue, make_agent
):
    make_agent("dana", extension="1001")
    phone_system.post(ringing("CA1"))
    phone_system.post(event("call.answered", "CA1", agent="1001"))

    response = _get_call(client, "CA1", **pull_headers("CA1"))

    assert response.status_code == 200
    assert response.json() | {"decision_id": None} == {
        "call_id": "CA1",
        "state": "connected",
        "queue": "loyalty",
        "agent": "1001",
        "decision_id": None,
    }


def test_a_pull_with_an_api_token_is_allowed(client, phone_system, queue):
    phone_system.post(ringing("CA1"))
    admin = User.objects.create_superuser("root", password="pw")
    token = Token.objects.create(user=admin)

    response = _get_call(client, "CA1", HTTP_AUTHORIZATION=f"Token {token.key}")

    assert (response.status_code, response.json()["agent"]) == (200, None)


def test_a_pull_without_credentials_or_with_a_bad_signature_is_refused(client, phone_system, queue):
    phone_system.post(ringing("CA1"))
    stale = sign(body="", timestamp=int(time.time()) - 600)

    assert _get_call(client, "CA1").status_code == 401
    assert _get_call(client, "CA1", **as_test_client_headers(sign(body="x"))).status_code == 401
    assert _get_call(client, "CA1", **as_test_client_headers(sign(body=""))).status_code == 401
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


def test_it_accepts_a_timestamp_within_five_minutes(phone_system, queue):
    body = json.dumps(ringing("CA1", occurred_at=datetime.now(tz=UTC) - timedelta(hours=1)))
    signed = sign(body=body, msg_id="msg_1", timestamp=int(time.time()) - 4 * 60)

    response = phone_system.send(body, {"content-type": "application/json", **signed})

    assert response.status_code == 202


def test_a_call_whose_routing_never_reached_the_broker_is_routed_by_the_sweeper(
    phone_system, queue, make_agent
):
    dana = make_agent("dana", status="available")
    recorded = phone_system.post(ringing("CA1"), work=False)
    assert recorded.status_code == 202
    # The event is applied by a task whose hand-off to the router never reached the broker:
    # the call is in the state a broker outage leaves it in.
    with tasks_published() as published:
        applying.apply_recorded_event(CallEvent.objects.get().pk)
    assert [name for name, _ in published] == ["routing.route_call"]
    call = Call.objects.get(telephony_call_id="CA1")
    assert (call.state, call.decisions.count()) == ("queued", 0)

    # Once the broker is back, beat runs the sweeper, which routes what is owed a decision.
    Call.objects.filter(pk=call.pk).update(queued_at=F("queued_at") - LOST_AFTER)
    router.sweep()

    call.refresh_from_db()
    assert (call.state, call.offers.get().agent) == ("offered", dana)
