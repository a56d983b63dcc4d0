"""What a load balancer and systemd ask: is the process up (`/api/health/live/`, touching
nothing), and can it serve (`/api/health/ready/`: PostgreSQL and Redis answer, each within its
timeout). Through the ASGI application as the server runs it."""

import time

import pytest

from tests.rapport.test_unreachable_services import postgresql_away
from tests.support.servers import free_port
from tests.support.telephony import request_application

pytestmark = pytest.mark.django_db(transaction=True)


def test_it_is_live_without_asking_postgresql_or_redis(settings):
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"
    with postgresql_away():
        response = request_application("GET", "/api/health/live/")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_it_is_ready_when_postgresql_and_redis_answer():
    response = request_application("GET", "/api/health/ready/")

    assert response.status_code == 200
    assert response.json() == {"status": "ready", "database": "ok", "redis": "ok"}


def test_it_is_not_ready_while_redis_is_out_of_reach(settings):
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"

    response = request_application("GET", "/api/health/ready/")

    assert response.status_code == 503
    assert response.json() == {"status": "not_ready", "database": "ok", "redis": "unreachable"}


def test_it_is_not_ready_while_postgresql_is_out_of_reach():
    with postgresql_away():
        response = request_application("GET", "/api/health/ready/")

    assert response.status_code == 503
    assert response.json() == {"status": "not_ready", "database": "unreachable", "redis": "ok"}


def test_a_redis_that_never_answers_is_given_up_on_within_the_timeout(settings):
    """A server that takes the connection and says nothing, as one hung or behind a dropping
    firewall: the probe is answered in about the timeout, not left to hang."""
    import socket

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    settings.REDIS_URL = f"redis://127.0.0.1:{silent.getsockname()[1]}/0"
    try:
        started = time.monotonic()
        response = request_application("GET", "/api/health/ready/")
        took = time.monotonic() - started
    finally:
        silent.close()

    assert response.status_code == 503
    assert response.json()["redis"] == "unreachable"
    assert took < 3.5


def test_the_old_health_check_still_reads_the_database():
    response = request_application("GET", "/api/health/")

    assert response.json() == {"status": "ok"}


@pytest.mark.parametrize("path", ["/api/health/live/", "/api/health/ready/"])
def test_the_probes_are_in_the_api_schema(client, path):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()

    assert "get" in schema["paths"][path]


@pytest.mark.parametrize("path", ["/api/health/live/", "/api/health/ready/", "/metrics"])
def test_probes_and_the_scraper_are_answered_over_plain_http(client, settings, path):
    """Behind the proxy they come from an internal address without TLS: never redirected."""
    settings.SECURE_SSL_REDIRECT = True

    response = client.get(path)

    assert response.status_code != 301
