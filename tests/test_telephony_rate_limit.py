"""The webhook is rate limited per source address, across servers (the count lives in Redis)."""

import uuid

import pytest
from django.core.cache import cache
from django.test import Client

from telephony.models import CallEvent
from tests.telephony_support import post_event, ringing, webhook_secret  # noqa: F401

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("webhook_secret")]


@pytest.fixture
def three_a_second(settings):
    settings.TELEPHONY_RATE_LIMIT = "3/s"
    cache.clear()
    yield
    cache.clear()


def post_from(address: str, *, forwarded_for: str | None = None):
    extra = {"REMOTE_ADDR": address}
    if forwarded_for:
        extra["HTTP_X_FORWARDED_FOR"] = forwarded_for
    return post_event(Client(), ringing(f"CA-{uuid.uuid4().hex}"), **extra)


def test_a_flood_from_one_source_is_refused_with_429_and_loses_nothing_accepted(three_a_second):
    statuses = [post_from("10.1.1.1").status_code for _ in range(4)]

    assert statuses == [202, 202, 202, 429]
    assert CallEvent.objects.count() == 3


def test_the_refusal_says_when_to_retry(three_a_second):
    for _ in range(3):
        post_from("10.1.1.1")
    refused = post_from("10.1.1.1")

    assert refused.status_code == 429
    assert int(refused["Retry-After"]) >= 1
    assert "detail" in refused.json()


def test_other_sources_are_not_held_back(three_a_second):
    for _ in range(4):
        post_from("10.1.1.1")

    assert post_from("10.2.2.2").status_code == 202


def test_a_forwarded_for_header_does_not_dodge_the_limit(three_a_second):
    statuses = [post_from("10.1.1.1", forwarded_for=f"192.0.2.{n}").status_code for n in range(4)]

    assert statuses[-1] == 429
