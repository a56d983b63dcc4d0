"""Delivery over real HTTP: 50 concurrent deliveries of one event have exactly one effect."""

import json
import threading

import httpx
import pytest

from infrastructure import dispatch
from routing import handoff, router
from routing.models import Call
from telephony.models import CallEvent
from telephony.signing import sign
from tests.telephony_support import (  # noqa: F401
    EVENTS_URL,
    ringing,
    webhook_secret,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


@pytest.mark.usefixtures("webhook_secret")
def test_50_concurrent_deliveries_of_one_event_record_it_once_and_route_it_once(
    live_server, queue, monkeypatch
):
    arrivals, publishes = [], []
    call_arrived, publish = router.call_arrived, dispatch.publish

    def counting_arrival(call):
        arrivals.append(call.pk)
        call_arrived(call)

    def counting_publish(task_name, *args):
        published = publish(task_name, *args)
        publishes.append((task_name, published))
        return published

    monkeypatch.setattr(router, "call_arrived", counting_arrival)
    monkeypatch.setattr(dispatch, "publish", counting_publish)
    body = json.dumps(ringing("CA-storm"))
    headers = {"content-type": "application/json", **sign(body=body, msg_id="msg_storm")}
    start = threading.Barrier(50)
    statuses = []

    def deliver():
        start.wait()
        # Like any webhook sender, retry when the test server's small backlog resets the socket.
        for _ in range(10):
            try:
                with httpx.Client(base_url=live_server.url, timeout=30) as http:
                    response = http.post(EVENTS_URL, content=body, headers=headers)
            except httpx.TransportError:
                continue
            statuses.append(response.status_code)
            return

    deliveries = [threading.Thread(target=deliver) for _ in range(50)]
    for delivery in deliveries:
        delivery.start()
    for delivery in deliveries:
        delivery.join(60)

    assert statuses == [202] * 50
    assert CallEvent.objects.filter(webhook_id="msg_storm").count() == 1
    assert Call.objects.filter(telephony_call_id="CA-storm").count() == 1
    call = Call.objects.get(telephony_call_id="CA-storm")
    assert arrivals == [call.pk]
    assert publishes == [(handoff.ROUTE_CALL, True)]
    assert call.state != "ringing"
