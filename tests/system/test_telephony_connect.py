"""Outbound `call.connect` pushes, and an event recorded while the broker was away, with a real
Celery worker, a real Redis that the tests stop and start, and a real HTTP server playing the
telephony system."""

from __future__ import annotations

import os
import time

import pytest
from django.db import transaction
from django.db.models import F
from standardwebhooks.webhooks import Webhook

from infrastructure import dispatch
from rapport.celery import app as celery_app
from routing.models import Call, DecisionReason, RoutingDecision
from telephony.applying import APPLY_EVENTS_WAITING_TOO_LONG
from telephony.connect import request_connect
from telephony.models import CallEvent, ConnectAttempt
from telephony.selectors import EVENT_TASK_LOST_AFTER
from tests.support.routing import database_url_for_workers, solo_worker, wait_until
from tests.support.telephony import TelephonyControl, new_secret, ringing

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

SECRET = new_secret()
QUEUE = "telephony-tests"


@pytest.fixture(scope="module")
def worker(django_db_setup, django_db_blocker, dedicated_redis, control_url, tmp_path_factory):
    """`celery worker` on the test database and the dedicated Redis."""
    with django_db_blocker.unblock():
        database_url = database_url_for_workers()
    workdir = tmp_path_factory.mktemp("worker")
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": dedicated_redis.url,
        "CELERY_QUEUE": QUEUE,
        "TELEPHONY_WEBHOOK_SECRET": SECRET,
        "TELEPHONY_CONTROL_URL": control_url,
        "TELEPHONY_CONNECT_RETRY_SECONDS": "0.2",
    }
    with solo_worker(env, workdir) as process:
        yield process


@pytest.fixture
def on_dedicated_broker(worker, dedicated_redis, control_url, settings):
    """This test process publishes where the worker listens, signs with the worker's secret."""
    settings.TELEPHONY_WEBHOOK_SECRET = [SECRET]
    settings.TELEPHONY_CONTROL_URL = control_url
    previous = celery_app.conf.broker_url, celery_app.conf.task_default_queue
    celery_app.conf.broker_url, celery_app.conf.task_default_queue = dedicated_redis.url, QUEUE
    TelephonyControl.script, TelephonyControl.received = [], []
    yield dedicated_redis
    celery_app.conf.broker_url, celery_app.conf.task_default_queue = previous


@pytest.fixture
def decided_call(queue, make_agent):
    dana = make_agent("dana", extension="1001", status="available")
    call = Call.objects.create(telephony_call_id="CA-push", queue=queue, state="offered")
    decision = RoutingDecision.objects.create(
        call=call, agent=dana, reason=DecisionReason.LONGEST_IDLE
    )
    return call, decision


def _attempts(call):
    return list(ConnectAttempt.objects.filter(call=call).values_list("attempt", "status_code"))


@pytest.mark.usefixtures("on_dedicated_broker")
def test_it_pushes_the_connect_instruction_until_the_telephony_system_takes_it(decided_call):
    call, decision = decided_call
    TelephonyControl.script = [503, 500]

    with transaction.atomic():
        request_connect(call, decision)

    wait_until(lambda: len(_attempts(call)) == 3, timeout=30)
    time.sleep(1.0)
    assert _attempts(call) == [(1, 503), (2, 500), (3, 200)]
    for headers, body in TelephonyControl.received:
        assert Webhook(SECRET).verify(body, headers) == {
            "type": "call.connect",
            "call_id": "CA-push",
            "agent": "1001",
            "decision_id": decision.pk,
        }


@pytest.mark.usefixtures("on_dedicated_broker")
def test_without_a_decision_it_pushes_the_calls_agent(decided_call):
    call, decision = decided_call
    Call.objects.filter(pk=call.pk).update(agent=decision.agent)
    call.refresh_from_db()

    with transaction.atomic():
        request_connect(call, None)

    wait_until(lambda: _attempts(call) == [(1, 200)], timeout=30)
    headers, body = TelephonyControl.received[0]
    assert Webhook(SECRET).verify(body, headers)["agent"] == "1001"


@pytest.mark.usefixtures("on_dedicated_broker")
def test_it_stops_pushing_once_the_call_ended(decided_call):
    call, decision = decided_call
    TelephonyControl.script = [503] * 100

    with transaction.atomic():
        request_connect(call, decision)
    wait_until(lambda: len(_attempts(call)) >= 2, timeout=30)
    Call.objects.filter(pk=call.pk).update(state="ended")
    pushed = len(_attempts(call))

    time.sleep(3.0)  # attempts 3 and 4 would have come 0.8 s and 1.6 s apart
    assert len(_attempts(call)) <= pushed + 1  # one may have been on its way


def test_it_pushes_nothing_without_a_control_url(
    decided_call, settings, django_capture_on_commit_callbacks
):
    settings.TELEPHONY_CONTROL_URL = ""
    call, decision = decided_call

    with django_capture_on_commit_callbacks() as callbacks:
        request_connect(call, decision)

    assert callbacks == []


def test_a_call_that_rang_while_the_broker_was_down_is_applied_and_routed_once_it_is_back(
    phone_system, queue, on_dedicated_broker
):
    redis = on_dedicated_broker
    redis.stop()

    started = time.monotonic()
    # The worker here is the real process: the test does not apply anything itself.
    response = phone_system.post(ringing("CA-outage"), work=False)
    took = time.monotonic() - started

    assert response.status_code == 202
    assert took < 3.0
    call = Call.objects.get(telephony_call_id="CA-outage")
    # Recorded (durable before the 202), its task never published: nothing applied it yet.
    assert CallEvent.objects.filter(call=call, fields_to_apply__isnull=False).count() == 1
    assert call.state == "ringing"

    redis.start()
    # Beat sends this task while an event waits longer than its task could have taken.
    CallEvent.objects.filter(call=call).update(received_at=F("received_at") - EVENT_TASK_LOST_AFTER)
    assert dispatch.publish(APPLY_EVENTS_WAITING_TOO_LONG)
    wait_until(lambda: RoutingDecision.objects.filter(call=call).exists(), timeout=60, every=0.2)
    call.refresh_from_db()
    assert call.state == "queued"
