"""`/metrics` as production serves it: uvicorn and a Celery worker, each a process of its own,
both writing to one PROMETHEUS_MULTIPROC_DIR. The worker applies the event and makes the offer;
the web server's /metrics shows what the worker counted, and the agent sockets it holds itself;
a server that stops takes its open sockets out of the sum."""

from __future__ import annotations

import asyncio

import httpx
import pytest
import websockets
from django.contrib.auth.models import User
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from tests.support.routing import wait_until
from tests.support.servers import served

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow, pytest.mark.timeout(120)]

TOKEN = "metrics-process-token-4b8e2c7a9d1f"


def scraped(base_url: str) -> dict[tuple[str, frozenset], float]:
    response = httpx.get(
        base_url + "/metrics", headers={"authorization": f"Bearer {TOKEN}"}, timeout=10
    )
    assert response.status_code == 200, response.text
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(found: dict, name: str, **labels: str) -> float:
    return found.get((name, frozenset(labels.items())), 0.0)


def test_the_web_server_sums_what_the_worker_counted_and_its_own_sockets(tmp_path, make_agent):
    make_agent("dana", status="available")
    client = Client()
    client.force_login(User.objects.get(username="dana"))
    session = client.cookies["sessionid"].value
    directory = tmp_path / "metrics"
    directory.mkdir()
    environment = {"PROMETHEUS_MULTIPROC_DIR": str(directory), "METRICS_TOKEN": TOKEN}

    with served(with_worker=True, extra_env=environment) as servers:
        servers.post_event(
            "call.ringing", "CA-processes", **{"from": "+14155550123", "to": "+18005550100"}
        )
        wait_until(
            lambda: value(scraped(servers.base_url), "rapport_offers_total", outcome="made") == 1,
            timeout=20,
        )
        socket_url = servers.base_url.replace("http://", "ws://") + "/ws/agent/"

        async def with_socket_open() -> dict:
            async with websockets.connect(
                socket_url,
                additional_headers={"Cookie": f"sessionid={session}", "Origin": servers.base_url},
            ) as socket:
                await socket.recv()
                return await asyncio.to_thread(scraped, servers.base_url)

        while_open = asyncio.run(with_socket_open())
        wait_until(
            lambda: value(scraped(servers.base_url), "rapport_sockets_open", kind="agent") == 0
        )

    assert value(while_open, "rapport_offers_total", outcome="made") == 1
    assert value(while_open, "rapport_screen_pop_seconds_count") == 1
    assert value(while_open, "rapport_event_apply_delay_seconds_count") == 1
    assert (
        value(while_open, "rapport_webhook_responses_total", endpoint="signed_events", status="202")
        == 1
    )
    assert value(while_open, "rapport_sockets_open", kind="agent") == 1
    # Her offer rings: not yet taken, she is still available.
    assert value(while_open, "rapport_agents", status="available") == 1
    # The server stopped: its live gauge's file is gone, its counters' files are kept.
    assert not list(directory.glob("gauge_livesum_*.db"))
    assert list(directory.glob("counter_*.db"))
