"""A `call.connect` instruction is never lost for good: with Redis (broker and channel layer)
stopped while the agent accepts, the accept still answers 200, and once Redis is back the
router's sweeper has the push sent to the telephony system. A real worker with beat, a real
Redis the test stops and starts, a real HTTP server playing the telephony system."""

from __future__ import annotations

import json
import os

import pytest
from channels.layers import channel_layers
from rest_framework.test import APIClient
from standardwebhooks.webhooks import Webhook

from rapport.celery import app as celery_app
from routing import router
from routing.models import Call, Offer
from routing.states import OfferState
from telephony.models import ConnectAttempt
from tests.support.routing import arrive, database_url_for_workers, solo_worker, wait_until
from tests.support.telephony import TelephonyControl, new_secret

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow, pytest.mark.timeout(180)]

SECRET = new_secret()
QUEUE = "connect-durability-tests"
CONNECT_TIMEOUT_SECONDS = "1"


@pytest.fixture(scope="module")
def worker_with_sweeper(
    django_db_setup, django_db_blocker, dedicated_redis, control_url, tmp_path_factory
):
    """`celery worker -B` (the sweeper every half second) on the test database and the
    dedicated Redis, pushing to the stand-in telephony system."""
    with django_db_blocker.unblock():
        database_url = database_url_for_workers()
    workdir = tmp_path_factory.mktemp("worker")
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": dedicated_redis.url,
        "CELERY_QUEUE": QUEUE,
        "ROUTER_SWEEP_SECONDS": "0.5",
        "TELEPHONY_WEBHOOK_SECRET": SECRET,
        "TELEPHONY_CONTROL_URL": control_url,
        "TELEPHONY_CONNECT_RETRY_SECONDS": "0.2",
        "TELEPHONY_CONNECT_TIMEOUT_SECONDS": CONNECT_TIMEOUT_SECONDS,
    }
    with solo_worker(env, workdir, beat=True) as process:
        yield process


@pytest.fixture
def everything_on_the_dedicated_redis(worker_with_sweeper, dedicated_redis, control_url, settings):
    """This test process publishes where the worker listens and sends screen messages through
    the same Redis, so stopping it takes both away."""
    settings.TELEPHONY_WEBHOOK_SECRET = [SECRET]
    settings.TELEPHONY_CONTROL_URL = control_url
    settings.TELEPHONY_CONNECT_TIMEOUT_SECONDS = int(CONNECT_TIMEOUT_SECONDS)
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [{"address": dedicated_redis.url, "socket_timeout": 2}]},
        }
    }
    channel_layers.backends.clear()
    previous = celery_app.conf.broker_url, celery_app.conf.task_default_queue
    celery_app.conf.broker_url, celery_app.conf.task_default_queue = dedicated_redis.url, QUEUE
    TelephonyControl.script, TelephonyControl.received = [], []
    yield dedicated_redis
    celery_app.conf.broker_url, celery_app.conf.task_default_queue = previous
    channel_layers.backends.clear()
    if dedicated_redis.process is None:
        dedicated_redis.start()


def pushed_for(call: Call) -> list[dict]:
    return [
        Webhook(SECRET).verify(body, headers)
        for headers, body in list(TelephonyControl.received)
        if json.loads(body)["call_id"] == call.telephony_call_id
    ]


def test_an_accept_while_redis_is_down_answers_200_and_the_connect_push_arrives_once_it_is_back(
    everything_on_the_dedicated_redis, queue, make_agent
):
    redis = everything_on_the_dedicated_redis
    dana = make_agent("dana", extension="1001", status="available")
    call = arrive(queue=queue, publish=False)
    router.route_call(call.id)
    offer = Offer.objects.get(call=call, state=OfferState.OFFERED)
    client = APIClient()
    client.force_authenticate(dana.user)

    redis.stop()
    accepted = client.post(f"/api/offers/{offer.id}/accept/")
    redis.start()

    assert accepted.status_code == 200, accepted.content
    assert accepted.json()["state"] == "accepted"
    decision = offer.decision
    pushes = wait_until(lambda: pushed_for(call), timeout=90, every=0.2)
    assert pushes[0] == {
        "type": "call.connect",
        "call_id": call.telephony_call_id,
        "agent": "1001",
        "decision_id": decision.pk,
    }
    wait_until(lambda: ConnectAttempt.objects.filter(call=call, status_code=200).exists())
