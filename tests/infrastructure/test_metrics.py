"""`/metrics` as the monitoring's scraper reads it, through the ASGI application: off without
METRICS_TOKEN, refused without the right token, and with it the figures a contact centre
watches, counted where each thing happens while a real call comes in through the signed
webhook, is offered and accepted."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator
from django.core import checks
from django.utils import timezone
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from infrastructure import metrics
from infrastructure.paths import BASE_DIR
from rapport.asgi import application
from routing.models import Call, Offer
from routing.states import AgentStatus, OfferState
from tests.support.people import Person, request_connections_closed  # noqa: F401 (fixture)
from tests.support.sockets import fresh_channel_layer  # noqa: F401 (fixture)
from tests.support.telephony import request_application, ringing

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]

TOKEN = "metrics-test-token-8d2f1a9c4e7b"


@pytest.fixture
def metrics_on(settings) -> str:
    settings.METRICS_TOKEN = TOKEN
    return TOKEN


def scrape(token: str = TOKEN):
    return request_application("GET", "/metrics", headers={"authorization": f"Bearer {token}"})


def samples(token: str = TOKEN) -> dict[tuple[str, frozenset], float]:
    """Every sample of a scrape, by name and labels."""
    response = scrape(token)
    assert response.status_code == 200, response.text
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(found: dict, name: str, **labels: str) -> float:
    return found.get((name, frozenset(labels.items())), 0.0)


def test_metrics_are_off_without_a_token(settings):
    settings.METRICS_TOKEN = ""

    assert scrape("anything").status_code == 404


@pytest.mark.usefixtures("metrics_on")
@pytest.mark.parametrize(
    ("authorization", "status"),
    [(None, 401), ("Bearer wrong-token-8d2f1a9c4e7b0000", 403), (f"Basic {TOKEN}", 403)],
)
def test_a_scrape_without_the_right_token_is_refused(authorization, status):
    headers = {"authorization": authorization} if authorization else {}

    response = request_application("GET", "/metrics", headers=headers)

    assert response.status_code == status
    assert "rapport_" not in response.text


@pytest.mark.parametrize("weak", ["short", "a" * 40])
def test_a_weak_metrics_token_is_refused_at_start(settings, weak):
    settings.METRICS_TOKEN = weak

    found = checks.run_checks(include_deployment_checks=True)

    assert [error.id for error in found if error.id == "rapport.E007"] == ["rapport.E007"]
    assert all(weak not in error.msg for error in found)


@pytest.mark.usefixtures("metrics_on")
def test_a_call_offered_and_accepted_is_counted_where_it_happened(
    phone_system,
    make_agent,
    request_connections_closed,  # noqa: F811
):
    dana = make_agent("dana", status="available")
    before = samples()

    assert phone_system.post(ringing("CA-metrics")).status_code == 202
    offer = Offer.objects.get(call__telephony_call_id="CA-metrics")
    accepted = Person(dana.user).post(f"/api/offers/{offer.id}/accept/")
    assert accepted.status_code == 200, accepted.text
    after = samples()

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert grew("rapport_offers_total", outcome="made") == 1
    assert grew("rapport_offers_total", outcome="accepted") == 1
    assert grew("rapport_offers_total", outcome="declined") == 0
    assert grew("rapport_screen_pop_seconds_count") == 1
    assert grew("rapport_event_apply_delay_seconds_count") == 1
    assert 0 < grew("rapport_screen_pop_seconds_sum") < 10
    assert grew("rapport_webhook_responses_total", endpoint="signed_events", status="202") == 1
    assert value(after, "rapport_agents", status=AgentStatus.BUSY) == 1
    for status in AgentStatus.values:
        assert ("rapport_agents", frozenset({("status", status)})) in after


@pytest.mark.usefixtures("metrics_on")
def test_callers_waiting_and_the_longest_wait_are_read_per_queue(phone_system, queue):
    phone_system.post(ringing("CA-waits-long"))
    phone_system.post(ringing("CA-waits-short"))
    Call.objects.filter(telephony_call_id="CA-waits-long").update(
        queued_at=timezone.now() - timedelta(seconds=90)
    )

    found = samples()

    assert value(found, "rapport_callers_waiting", queue="loyalty") == 2
    assert 90 <= value(found, "rapport_longest_wait_seconds", queue="loyalty") < 120


@pytest.mark.usefixtures("metrics_on")
def test_the_floor_is_read_in_the_same_few_statements_however_many_queues(
    phone_system, queue, django_assert_max_num_queries
):
    from routing.models import Queue

    for number in range(5):
        Queue.objects.create(slug=f"q{number}", name=f"Queue {number}")
    from supervisor.metrics import FloorCollector

    for number in range(20):
        phone_system.post(ringing(f"CA-many-{number}"))

    with django_assert_max_num_queries(3):
        families = FloorCollector().collect()

    assert {family.name for family in families} == {
        "rapport_callers_waiting",
        "rapport_longest_wait_seconds",
        "rapport_agents",
    }


@pytest.mark.usefixtures("metrics_on")
def test_a_declined_offer_and_a_reunion_are_counted(phone_system, make_agent, make_customer):
    """Maya spoke with Dana before: her call is offered to Dana first (a reunion outcome),
    Dana declines (an offer declined), and the call goes on to the queue."""
    from tests.support.routing import past_call

    dana = make_agent("dana", status="available")
    maya = make_customer("Maya Chen")
    past_call(customer=maya, agent=dana, queue=dana.queues.get())
    before = samples()

    phone_system.post(ringing("CA-reunion"))
    offer = Offer.objects.get(call__telephony_call_id="CA-reunion", state=OfferState.OFFERED)
    from routing import offers

    offers.decline_offer(offer_id=offer.id, agent_id=dana.id)
    after = samples()

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert grew("rapport_reunions_total", outcome="last_agent") == 1
    assert grew("rapport_reunions_total", outcome="last_agent_declined") == 1
    assert grew("rapport_offers_total", outcome="declined") == 1


@pytest.mark.usefixtures("metrics_on")
def test_answers_to_generic_cti_are_counted_without_the_token_in_the_path(settings):
    settings.TELEPHONY_CTI_TOKEN = "a-cti-token-never-shown-7f3e9b1d5c"
    before = samples()

    request_application("POST", "/api/telephony/cti/a-cti-token-never-shown-7f3e9b1d5c/")
    request_application("POST", "/api/telephony/cti/a-wrong-guess-0000000000000/")
    response = scrape()

    assert "never-shown" not in response.text and "wrong-guess" not in response.text
    after = samples()
    answered = sum(
        value(after, name, **dict(labels)) - value(before, name, **dict(labels))
        for name, labels in after
        if name == "rapport_webhook_responses_total" and ("endpoint", "cti") in labels
    )
    assert answered == 2


def agent_sockets_open() -> float:
    return REGISTRY.get_sample_value("rapport_sockets_open", {"kind": "agent"}) or 0.0


@pytest.mark.usefixtures("metrics_on", "fresh_channel_layer", "fast_logins")
def test_sockets_open_are_counted_while_open(make_agent, request_connections_closed):  # noqa: F811
    dana = Person(make_agent("dana").user)

    async def open_and_close() -> tuple[float, float]:
        socket = WebsocketCommunicator(application, "/ws/agent/", headers=dana.socket_headers)
        connected, _ = await socket.connect()
        assert connected
        await socket.receive_json_from(timeout=5)
        opened = agent_sockets_open()
        await socket.disconnect()
        return opened, agent_sockets_open()

    before = agent_sockets_open()
    opened, closed = async_to_sync(open_and_close)()

    assert (opened - before, closed - before) == (1, 0)


_COUNT_IN_A_PROCESS = """
import os, sys
from infrastructure.metrics import OFFERS, SOCKETS_OPEN
OFFERS.labels(outcome="made").inc()
SOCKETS_OPEN.labels(kind="agent").inc()
print(os.getpid(), flush=True)
sys.stdin.read()
"""


@pytest.mark.usefixtures("metrics_on")
def test_with_a_multiprocess_directory_every_process_is_summed(tmp_path, monkeypatch):
    """Three other processes (as web servers or pool processes) count into the directory;
    this process's /metrics sums them. One stops and says so, one is killed outright: neither's
    open sockets count any more, and their offers still do."""
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    environment = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", _COUNT_IN_A_PROCESS],
            cwd=BASE_DIR,
            env=environment,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    try:
        pids = [int(process.stdout.readline()) for process in processes]

        summed = samples()
        metrics.process_exited(pids[0])
        processes[1].kill()
        processes[1].wait(timeout=10)
        after_exits = samples()
    finally:
        for process in processes:
            process.kill()
            process.wait(timeout=10)

    assert value(summed, "rapport_offers_total", outcome="made") == 3
    assert value(summed, "rapport_sockets_open", kind="agent") == 3
    assert value(after_exits, "rapport_offers_total", outcome="made") == 3
    assert value(after_exits, "rapport_sockets_open", kind="agent") == 1
    assert ("rapport_agents", frozenset({("status", "available")})) in summed
