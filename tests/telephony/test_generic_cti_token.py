"""The Generic CTI token is the endpoint's only credential and travels in its URL: it never
reaches the logs, a weak one stops the server from starting, and guessing it is stopped with
429. Requests go through the application as the server runs it."""

import io
import logging
import os
import secrets
import subprocess
import sys

import pytest
from django.conf import settings

from customers.card_numbers import CardNumberFilter
from routing.models import Call
from tests.support.generic_cti import TOKEN
from tests.support.servers import manage_check
from tests.support.telephony import request_application

pytestmark = pytest.mark.django_db(transaction=True)

FORM = "application/x-www-form-urlencoded"
NEW_CALL = "event=newCall&callId=cti-1&from=%2B14155550123&to=%2B18005550100&direction=in"


@pytest.fixture(autouse=True)
def cti_token(settings):
    settings.TELEPHONY_CTI_TOKEN = TOKEN


def post_cti(token: str, body: str = NEW_CALL, *, from_address: str = "127.0.0.1"):
    return request_application(
        "POST",
        f"/api/telephony/cti/{token}/",
        body,
        {"content-type": FORM},
        from_address=from_address,
    )


def a_new_address() -> str:
    """An address no other test has posted from: the guesses counted are this test's."""
    return f"10.{secrets.randbelow(250)}.{secrets.randbelow(250)}.{secrets.randbelow(250) + 1}"


@pytest.fixture
def written_log():
    """What the server's log handler writes, as it writes it."""
    # Loading the server configures logging afresh: its handler, not an earlier one.
    import rapport.asgi  # noqa: F401

    handler = next(
        handler
        for handler in logging.getLogger().handlers
        if any(isinstance(f, CardNumberFilter) for f in handler.filters)
    )
    stream = io.StringIO()
    original = handler.setStream(stream)
    yield stream
    handler.setStream(original)


def test_the_token_never_reaches_the_log_when_a_request_is_refused(written_log):
    bad_request = post_cti(TOKEN, "event=exploded&callId=cti-1")
    wrong_token = post_cti("a-wrong-guess-of-the-token")

    assert (bad_request.status_code, wrong_token.status_code) == (400, 403)
    written = written_log.getvalue()
    assert "/api/telephony/cti/" in written
    assert TOKEN not in written
    assert "a-wrong-guess-of-the-token" not in written


def test_guessing_the_token_is_stopped_with_429_and_retry_after():
    guesser = a_new_address()

    answers = [post_cti(f"guess-{n:04d}", from_address=guesser) for n in range(12)]
    right_token_from_the_guesser = post_cti(TOKEN, from_address=guesser)
    the_pbx = post_cti(TOKEN, from_address=a_new_address())

    assert [answer.status_code for answer in answers] == [403] * 10 + [429] * 2
    assert int(answers[-1].headers["retry-after"]) > 0
    # The right token is no way out: the guesser cannot tell it from a wrong one.
    assert right_token_from_the_guesser.status_code == 429
    assert (the_pbx.status_code, the_pbx.json()) == (200, {})
    assert Call.objects.filter(telephony_call_id="cti-1").count() == 1


@pytest.mark.parametrize(
    "token",
    [
        "1234",
        "cti-token",
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "a strong/looking token 8f3k2m9q",
    ],
)
def test_a_weak_cti_token_fails_the_system_check_without_being_shown(token):
    result = manage_check(TELEPHONY_CTI_TOKEN=token)

    assert result.returncode != 0
    assert "TELEPHONY_CTI_TOKEN" in result.stderr
    assert token not in result.stderr + result.stdout


def test_the_web_server_refuses_to_start_with_a_weak_cti_token():
    result = subprocess.run(
        [sys.executable, "-c", "import rapport.asgi"],
        cwd=settings.BASE_DIR,
        env={**os.environ, "TELEPHONY_CTI_TOKEN": "1234"},
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode != 0
    assert "TELEPHONY_CTI_TOKEN" in result.stderr


def test_a_token_made_as_the_docs_say_passes_the_system_check():
    result = manage_check(TELEPHONY_CTI_TOKEN=secrets.token_urlsafe(32))

    assert result.returncode == 0, result.stderr
