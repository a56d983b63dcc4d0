"""Hostile input: absurd nesting, card numbers in disguise, replayed signatures. Each gets a
clear 4xx naming what is wrong, never a 500, and loses nothing already accepted; a weak webhook
secret is refused before the server starts. Oversized bodies:
tests/infrastructure/test_request_limits.py; forged addresses behind a proxy:
tests/infrastructure/test_client_address.py."""

import base64
import json
import os
import subprocess
import sys

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from rest_framework.authtoken.models import Token

from customers.card_numbers import mask_card_numbers, mask_card_numbers_in
from routing.models import Call
from telephony.models import CallEvent
from telephony.signing import sign
from tests.support.generic_cti import TOKEN
from tests.support.servers import manage_check
from tests.support.telephony import (
    as_test_client_headers,
    request_application,
    ringing,
    signed_pull_headers,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("webhook_secret")]


def nested(depth: int, leaf="4111 1111 1111 1111"):
    value = leaf
    for _ in range(depth):
        value = {"next": value}
    return value


def test_metadata_nested_700_levels_is_refused_with_400_naming_metadata(phone_system, queue):
    response = phone_system.post(ringing("CA-deep", metadata=nested(700)))

    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["metadata"]
    assert "32" in response.json()["errors"]["metadata"][0]
    assert not CallEvent.objects.exists()


def test_any_other_field_nested_too_deep_is_named_too(phone_system, queue):
    response = phone_system.post(ringing("CA-deep", extra=[nested(40)]))

    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["extra"]


def test_a_body_nested_beyond_the_parser_is_a_400_not_a_500(phone_system, queue):
    body = '{"type": "call.ringing", "metadata": ' + "[" * 30000 + "]" * 30000 + "}"

    response = phone_system.post(body)

    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["metadata"]


def _nested_5000_deep(**fields) -> str:
    return json.dumps(fields)[:-1] + ', "metadata": ' + "[" * 5000 + "]" * 5000 + "}"


def test_generic_cti_json_nested_5000_deep_is_a_json_400_naming_the_field(
    transactional_db, settings
):
    settings.TELEPHONY_CTI_TOKEN = TOKEN
    body = _nested_5000_deep(event="newCall", callId="cti-deep", **{"from": "+14155550123"})

    response = request_application(
        "POST", f"/api/telephony/cti/{TOKEN}/", body, {"content-type": "application/json"}
    )

    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["metadata"]
    assert not Call.objects.exists()


def test_any_api_endpoint_answers_json_nested_5000_deep_with_a_json_400(
    transactional_db, make_agent
):
    dana = make_agent("dana")
    staff = User.objects.create_user("admin", is_staff=True)
    headers = {
        "content-type": "application/json",
        "authorization": f"Token {Token.objects.create(user=staff).key}",
    }

    response = request_application(
        "PATCH", f"/api/agents/{dana.id}/", _nested_5000_deep(display_name="Dana"), headers
    )

    assert response.status_code == 400
    assert response.headers["content-type"] == "application/json"
    assert "metadata" in response.json()["errors"]


def test_brackets_inside_strings_do_not_count_as_nesting(phone_system, queue):
    response = phone_system.post(ringing("CA-text", metadata={"ivr": "[" * 500 + '\\"{' * 50}))

    assert response.status_code == 202


def test_metadata_32_levels_deep_is_kept_and_masked(phone_system, queue):
    response = phone_system.post(ringing("CA-ok", metadata=nested(31)), webhook_id="msg_deep")

    assert response.status_code == 202
    stored = CallEvent.objects.get(webhook_id="msg_deep").payload["metadata"]
    assert "4111" not in json.dumps(stored)
    assert "**** **** **** 1111" in json.dumps(stored)


def test_masking_a_value_nested_thousands_deep_needs_no_recursion():
    masked = mask_card_numbers_in(nested(5000))

    for _ in range(5000):
        masked = masked["next"]
    assert masked == "**** **** **** 1111"


@pytest.mark.parametrize(
    "text, masked",
    [
        ("4111.1111.1111.1111", "****.****.****.1111"),
        ("4111/1111/1111/1111", "****/****/****/1111"),
        ("4111_1111_1111_1111", "****_****_****_1111"),
        ("4111\t1111\t1111\t1111", "****\t****\t****\t1111"),
        ("4111\n1111\r\n1111\n1111", "****\n****\r\n****\n1111"),
        ("card: 5555 / 5555 / 5555 / 4444.", "card: **** / **** / **** / 4444."),
    ],
)
def test_card_numbers_grouped_with_dots_slashes_underscores_or_breaks_are_masked(text, masked):
    assert mask_card_numbers(text) == masked


@pytest.mark.parametrize(
    "text",
    [
        "born 12/05/2026, seen 2026-11-23 at 17:30",
        "call 415.555.0123 or +1 415/555/0199",
        "from 10.20.30.40 to 192.168.100.200",
        "version 4.1.1.1",
    ],
)
def test_dates_phone_numbers_and_addresses_with_those_separators_are_kept(text):
    assert mask_card_numbers(text) == text


def test_a_card_number_with_dots_in_event_metadata_is_never_stored(phone_system, queue):
    body = ringing("CA-dots", metadata={"ivr": "paid with 4111.1111.1111.1111"})

    assert phone_system.post(body, webhook_id="msg_dots").status_code == 202

    stored = CallEvent.objects.get(webhook_id="msg_dots").payload["metadata"]
    assert stored == {"ivr": "paid with ****.****.****.1111"}


def _pull(client, call_id: str, headers: dict[str, str]):
    return client.get(f"/api/telephony/calls/{call_id}/", **headers)


def pull_headers(call_id: str) -> dict[str, str]:
    return signed_pull_headers(f"/api/telephony/calls/{call_id}/")


def test_a_signed_pull_is_good_for_its_own_call_only(phone_system, client, queue):
    phone_system.post(ringing("CA-mine"))
    phone_system.post(ringing("CA-other"))
    captured = pull_headers("CA-mine")

    assert _pull(client, "CA-other", captured).status_code == 401
    assert _pull(client, "CA-mine", captured).status_code == 200


def test_a_pull_signed_over_an_empty_body_is_refused(phone_system, client, queue):
    phone_system.post(ringing("CA-mine"))

    assert _pull(client, "CA-mine", as_test_client_headers(sign(body=""))).status_code == 401


def test_a_replayed_pull_is_refused(phone_system, client, queue):
    phone_system.post(ringing("CA-mine"))
    captured = pull_headers("CA-mine")

    first = _pull(client, "CA-mine", captured)
    replay = _pull(client, "CA-mine", captured)

    assert first.status_code == 200
    assert replay.status_code == 401
    assert "already used" in replay.json()["detail"]


def test_a_webhook_id_reused_for_a_different_event_is_a_409_and_changes_nothing(
    phone_system, queue
):
    first = phone_system.post(ringing("CA-1"), webhook_id="msg_reused")
    other = phone_system.post(ringing("CA-2"), webhook_id="msg_reused")

    assert first.status_code == 202
    assert other.status_code == 409
    assert other.json()["errors"] == {"webhook-id": ["already used for a different event"]}
    assert list(CallEvent.objects.values_list("call__telephony_call_id", flat=True)) == ["CA-1"]


def test_a_redelivery_of_the_same_event_stays_a_202_duplicate_even_with_a_card_number(
    phone_system, queue
):
    ring = ringing("CA-1", metadata={"ivr": "4111 1111 1111 1111"})
    phone_system.post(ring, webhook_id="msg_again")

    again = phone_system.post(ring, webhook_id="msg_again")

    assert again.status_code == 202
    assert again.json()["duplicate"] is True


def test_a_redelivery_holding_a_number_beyond_a_float_is_still_the_202_duplicate(
    phone_system, queue
):
    body = json.dumps(ringing("CA-1", metadata={"amount": "N"})).replace('"N"', "1.1e30")
    first = phone_system.post(body, webhook_id="msg_huge")

    again = phone_system.post(body, webhook_id="msg_huge")

    assert first.status_code == 202
    assert (again.status_code, again.json()["duplicate"]) == (202, True)
    assert CallEvent.objects.count() == 1


def test_a_webhook_id_reused_for_another_call_leaves_no_call_behind(phone_system, queue):
    phone_system.post(ringing("CA-1"), webhook_id="msg_reused")

    other = phone_system.post(ringing("CA-2"), webhook_id="msg_reused")

    assert other.status_code == 409
    assert list(Call.objects.values_list("telephony_call_id", flat=True)) == ["CA-1"]


@pytest.mark.parametrize(
    "secret",
    [
        "whsec_" + base64.b64encode(b"sixteen-bytes-ok").decode(),
        "whsec_not base64!",
        base64.b64encode(b"thirty-two-bytes-but-no-prefix!!").decode(),
    ],
)
def test_a_weak_or_malformed_webhook_secret_fails_the_system_check(secret):
    strong = "whsec_" + base64.b64encode(b"a-strong-secret-of-thirty-two-b!").decode()

    result = manage_check(TELEPHONY_WEBHOOK_SECRET=f"{strong},{secret}")

    assert result.returncode != 0
    assert "TELEPHONY_WEBHOOK_SECRET" in result.stderr
    assert secret not in result.stderr + result.stdout


def test_the_web_server_refuses_to_start_with_a_weak_webhook_secret():
    weak = "whsec_" + base64.b64encode(b"short").decode()
    result = subprocess.run(
        [sys.executable, "-c", "import rapport.asgi"],
        cwd=settings.BASE_DIR,
        env={**os.environ, "TELEPHONY_WEBHOOK_SECRET": weak},
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode != 0
    assert "TELEPHONY_WEBHOOK_SECRET" in result.stderr


def test_strong_webhook_secrets_pass_the_system_check():
    strong = "whsec_" + base64.b64encode(b"a-strong-secret-of-thirty-two-b!").decode()

    result = manage_check(TELEPHONY_WEBHOOK_SECRET=strong)

    assert result.returncode == 0, result.stderr
