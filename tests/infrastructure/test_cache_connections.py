"""Requests share the process's Redis connections: the cache (the webhook's throttle) opens no
new one per request under the ASGI server."""

import asyncio
import json
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import httpx
import pytest
import redis
from django.conf import settings as django_settings
from django.db import connections
from standardwebhooks import Webhook

from infrastructure.asgi_handler import SyncChainASGIHandler
from telephony.models import CallEvent
from tests.support.telephony import EVENTS_URL, ringing

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("webhook_secret")]


def connections_opened(server: redis.Redis) -> int:
    return server.info("stats")["total_connections_received"]


def signed_events(secret: str, count: int) -> list[tuple[bytes, dict[str, str]]]:
    signer = Webhook(secret)
    events = []
    for _ in range(count):
        body = json.dumps(ringing(f"CA-{uuid.uuid4().hex}"))
        webhook_id, now = f"msg_{uuid.uuid4().hex}", datetime.now(tz=UTC)
        headers = {
            "content-type": "application/json",
            "webhook-id": webhook_id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": signer.sign(webhook_id, now, body),
        }
        events.append((body.encode(), headers))
    return events


def test_throttled_events_open_no_redis_connection_per_request(settings):
    secret = settings.TELEPHONY_WEBHOOK_SECRET[0]
    settings.TELEPHONY_RATE_LIMIT = "1000/s"
    settings.ALLOWED_HOSTS = ["testserver"]
    server = redis.Redis.from_url(django_settings.REDIS_URL)
    handler = SyncChainASGIHandler()

    async def post_all(events) -> list[int]:
        transport = httpx.ASGITransport(app=handler)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            # Each request a task of its own, as the ASGI server runs them: each its own context.
            return [
                (
                    await asyncio.create_task(client.post(EVENTS_URL, content=body, headers=h))
                ).status_code
                for body, h in events
            ]

    def served(events) -> list[int]:
        # In a new thread, as in the server, no request inherits a context this test touched.
        with ThreadPoolExecutor(max_workers=1) as server_thread:
            return server_thread.submit(asyncio.run, post_all(events)).result()

    try:
        assert served(signed_events(secret, 2)) == [202, 202]
        before = connections_opened(server)
        statuses = served(signed_events(secret, 20))
        opened = connections_opened(server) - before
    finally:
        for executor in handler.request_threads.idle:
            executor.submit(connections.close_all).result()
            executor.shutdown()

    assert statuses == [202] * 20
    assert opened == 0
    assert CallEvent.objects.count() == 22
