"""`GET /api/softphone/`: an agent's softphone credentials for Rapport's Kamailio, in the scheme
its auth_ephemeral module checks (Kamailio itself checks them in tests/system/test_pbx.py)."""

import base64
import hashlib
import hmac
import secrets
import time

import pytest
from django.contrib.auth.models import User

from tests.support.people import Person, request_connections_closed  # noqa: F401 (fixture)
from tests.support.servers import manage_check

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("request_connections_closed"),
]

SECRET = "softphone-secret-8f3k2m9q7x4w1z6v"


@pytest.fixture
def softphone(settings):
    settings.SOFTPHONE_SHARED_SECRET = SECRET
    settings.SOFTPHONE_WEBSOCKET_URL = "wss://rapport.example.com/sip"
    settings.SOFTPHONE_SIP_DOMAIN = "rapport.example.com"


@pytest.mark.usefixtures("softphone")
def test_an_agent_gets_their_own_ephemeral_credentials(make_agent):
    dana = make_agent("dana", extension="1001")

    response = Person(dana.user).get("/api/softphone/")

    assert response.status_code == 200, response.text
    answer = response.json()
    expires, identity = answer["username"].split(":")
    assert identity == "1001"
    assert int(expires) == answer["expires"] > time.time() + 3600
    expected = hmac.new(SECRET.encode(), answer["username"].encode(), hashlib.sha1).digest()
    assert answer["password"] == base64.b64encode(expected).decode()
    assert answer["uri"] == "sip:1001@rapport.example.com"
    assert answer["websocket_url"] == "wss://rapport.example.com/sip"
    assert response.headers["cache-control"] == "no-store"


@pytest.mark.usefixtures("softphone")
def test_someone_who_takes_no_calls_has_no_softphone(db):
    supervisor = User.objects.create_user("sam", password="pw-sam")

    assert Person(supervisor).get("/api/softphone/").status_code == 403


def test_without_a_configured_softphone_there_is_none(make_agent):
    dana = make_agent("dana", extension="1001")

    assert Person(dana.user).get("/api/softphone/").status_code == 404


@pytest.mark.parametrize("secret", ["short", "abababababababababababababab"])
def test_a_weak_shared_secret_fails_the_system_check_without_being_shown(secret):
    result = manage_check(SOFTPHONE_SHARED_SECRET=secret)

    assert result.returncode != 0
    assert "SOFTPHONE_SHARED_SECRET" in result.stderr
    assert secret not in result.stderr + result.stdout


def test_a_secret_made_as_the_hint_says_passes_the_system_check():
    assert manage_check(SOFTPHONE_SHARED_SECRET=secrets.token_urlsafe(32)).returncode == 0
