"""Delivery over real HTTP to the server as production runs it (uvicorn and a Celery worker):
50 concurrent deliveries of one event have exactly one effect."""

import json
import threading

import httpx
import pytest
from standardwebhooks.webhooks import Webhook

from routing.models import Call, RoutingDecision
from telephony.models import CallEvent
from telephony.signing import signature_headers
from tests.support.routing import wait_until
from tests.support.servers import WEBHOOK_SECRET, served
from tests.support.telephony import EVENTS_URL, ringing

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def test_50_concurrent_deliveries_of_one_event_record_it_once_and_route_it_once(
    django_db_blocker, queue
):
    body = json.dumps(ringing("CA-storm"))
    headers = {
        "content-type": "application/json",
        **signature_headers(webhook=Webhook(WEBHOOK_SECRET), body=body, msg_id="msg_storm"),
    }
    start = threading.Barrier(50)
    statuses = []

    with django_db_blocker.unblock(), served(with_worker=True) as servers:

        def deliver():
            start.wait()
            with httpx.Client(base_url=servers.base_url, timeout=30) as http:
                statuses.append(http.post(EVENTS_URL, content=body, headers=headers).status_code)

        deliveries = [threading.Thread(target=deliver) for _ in range(50)]
        for delivery in deliveries:
            delivery.start()
        for delivery in deliveries:
            delivery.join(60)

        def applied():
            """the event applied and the call routed"""
            return RoutingDecision.objects.filter(call__telephony_call_id="CA-storm").exists()

        wait_until(applied, timeout=30)

    assert statuses == [202] * 50
    event = CallEvent.objects.get(webhook_id="msg_storm")
    assert (event.applied, event.fields_to_apply) == (True, None)
    call = Call.objects.get(telephony_call_id="CA-storm")
    assert call.state == "queued"
    # Routed once: the router's one decision (nobody free), however many deliveries.
    assert list(call.decisions.values_list("reason", flat=True)) == ["no_agent_waiting"]
