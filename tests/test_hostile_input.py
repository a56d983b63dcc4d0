"""Hostile input: absurd nesting, card numbers in disguise, oversized bodies, replayed
signatures. Each gets a clear 4xx naming what is wrong, never a 500, and loses nothing
already accepted."""

import json

import pytest

from customers.card_numbers import mask_card_numbers, mask_card_numbers_in
from telephony.models import CallEvent
from tests.telephony_support import post_event, ringing, webhook_secret  # noqa: F401

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("webhook_secret")]


def nested(depth: int, leaf="4111 1111 1111 1111"):
    value = leaf
    for _ in range(depth):
        value = {"next": value}
    return value


def test_metadata_nested_700_levels_is_refused_with_400_naming_metadata(client, queue):
    response = post_event(client, ringing("CA-deep", metadata=nested(700)))

    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["metadata"]
    assert "32" in response.json()["errors"]["metadata"][0]
    assert not CallEvent.objects.exists()


def test_any_other_field_nested_too_deep_is_named_too(client, queue):
    response = post_event(client, ringing("CA-deep", extra=[nested(40)]))

    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["extra"]


def test_a_body_nested_beyond_the_parser_is_a_400_not_a_500(client, queue):
    body = '{"type": "call.ringing", "metadata": ' + "[" * 30000 + "]" * 30000 + "}"

    response = post_event(client, body)

    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["metadata"]


def test_brackets_inside_strings_do_not_count_as_nesting(client, queue):
    response = post_event(client, ringing("CA-text", metadata={"ivr": "[" * 500 + '\\"{' * 50}))

    assert response.status_code == 202


def test_metadata_32_levels_deep_is_kept_and_masked(client, queue):
    response = post_event(client, ringing("CA-ok", metadata=nested(31)), webhook_id="msg_deep")

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


def test_a_card_number_with_dots_in_event_metadata_is_never_stored(client, queue):
    body = ringing("CA-dots", metadata={"ivr": "paid with 4111.1111.1111.1111"})

    assert post_event(client, body, webhook_id="msg_dots").status_code == 202

    stored = CallEvent.objects.get(webhook_id="msg_dots").payload["metadata"]
    assert stored == {"ivr": "paid with ****.****.****.1111"}
