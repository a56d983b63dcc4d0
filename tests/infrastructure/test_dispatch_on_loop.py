"""A task published from an event loop (`infrastructure.dispatch.publish_on_loop`) is the message
kombu's own publish would have sent, and a real Celery worker runs it."""

from __future__ import annotations

import asyncio
import base64
import json

import pytest
import redis
from django.conf import settings

from infrastructure import dispatch
from routing import handoff
from routing.models import Offer
from tests.support.routing import arrive, celery_queue, running_workers, wait_until


def raw_messages(queue: str) -> list[dict]:
    broker = redis.Redis.from_url(settings.REDIS_URL)
    try:
        return [json.loads(raw) for raw in reversed(broker.lrange(queue, 0, -1))]
    finally:
        broker.delete(queue)


def without_ids(message: dict) -> dict:
    """The message with what is unique to each publish blanked: the task id and tag."""
    message = json.loads(json.dumps(message))
    for name in ("id", "root_id"):
        message["headers"][name] = "…"
    message["properties"]["correlation_id"] = "…"
    message["properties"]["delivery_tag"] = "…"
    message["body"] = json.loads(base64.b64decode(message["body"]))
    return message


def test_the_message_sent_from_the_loop_is_the_one_kombu_sends():
    with celery_queue("dispatch-on-loop-test") as queue:
        assert dispatch.publish(handoff.ROUTE_CALL, 42)
        assert asyncio.run(dispatch.publish_on_loop(handoff.ROUTE_CALL, 42))
        by_kombu, from_the_loop = raw_messages(queue)

    assert from_the_loop["headers"]["task"] == handoff.ROUTE_CALL
    # `send_task` passes its own options on to kombu, which copies them into the properties;
    # no worker reads them there (they are in the headers, where it does).
    for leaked_option in ("argsrepr", "kwargsrepr"):
        del by_kombu["properties"][leaked_option]
    assert without_ids(from_the_loop) == without_ids(by_kombu)


@pytest.mark.django_db(transaction=True)
def test_a_worker_runs_a_task_sent_from_the_loop(tmp_path, queue, make_agent):
    """A call waits with no message (its hand-off lost); `routing.route_call` sent from the
    loop has a real worker offer it to the free agent."""
    agent = make_agent("dana", status="available")
    call = arrive(queue=queue, publish=False)
    with running_workers(tmp_path, beat=False):
        assert asyncio.run(dispatch.publish_on_loop(handoff.ROUTE_CALL, call.id))

        def offered():
            """the call was offered to the agent"""
            return Offer.objects.filter(call_id=call.id, agent=agent).exists()

        wait_until(offered, timeout=30)
