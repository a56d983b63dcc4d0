"""`/ws/supervisor/` over the real Redis channel layer: snapshot, coalesced frames, refusal."""

import asyncio
import time

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import User
from django.utils import timezone

from infrastructure.broadcast import notify_supervisors
from infrastructure.groups import SUPERVISORS_GROUP
from rapport.asgi import application
from routing.models import Call
from tests.support.sockets import fresh_channel_layer, socket_headers  # noqa: F401 (fixture)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]


def communicator_with(headers: list[tuple[bytes, bytes]]) -> WebsocketCommunicator:
    return WebsocketCommunicator(application, "/ws/supervisor/", headers=headers)


async def frames_within(communicator: WebsocketCommunicator, seconds: float) -> list[dict]:
    frames = []
    deadline = time.monotonic() + seconds
    # receive_nothing waits without tearing the application down on a timeout.
    while deadline - time.monotonic() > 0:
        if not await communicator.receive_nothing(timeout=0.05, interval=0.01):
            frames.append(await communicator.receive_json_from(timeout=5))
    return frames


def test_it_sends_a_snapshot_on_connect(supervisor, queue, make_agent):
    make_agent("dana", status="available")
    Call.objects.create(
        telephony_call_id="CA-1", queue=queue, state="queued", queued_at=timezone.now()
    )

    headers = socket_headers(supervisor)

    async def scenario():
        communicator = communicator_with(headers)
        connected, _ = await communicator.connect()
        assert connected
        snapshot = await communicator.receive_json_from(timeout=5)
        await communicator.disconnect()
        return snapshot

    snapshot = async_to_sync(scenario)()

    assert snapshot["type"] == "snapshot"
    assert snapshot["queues"][0]["waiting_calls"][0]["call_id"] == "CA-1"
    assert snapshot["agents"][0]["status"] == "available"
    assert snapshot["totals"]["waiting"] == 1


def test_a_burst_of_a_thousand_changes_becomes_a_few_frames(supervisor, queue):
    headers = socket_headers(supervisor)

    async def scenario():
        communicator = communicator_with(headers)
        assert (await communicator.connect())[0]
        await communicator.receive_json_from(timeout=5)
        layer = get_channel_layer()
        started = time.monotonic()
        for batch in range(100):
            await asyncio.gather(
                *(
                    layer.group_send(
                        SUPERVISORS_GROUP,
                        {"type": "figures.changed", "queue_id": queue.id, "agent_id": n},
                    )
                    for n in range(batch * 10, batch * 10 + 10)
                )
            )
        sent_in = time.monotonic() - started
        frames = await frames_within(communicator, sent_in + 1.5)
        await communicator.disconnect()
        return frames, sent_in + 1.5

    frames, seconds = async_to_sync(scenario)()

    assert frames, "the burst must produce a frame"
    assert all(frame["type"] == "figures" for frame in frames)
    assert len(frames) <= max(3, 4 * seconds)


def test_a_change_made_by_a_service_reaches_the_screen(supervisor, queue):
    headers = socket_headers(supervisor)

    async def scenario():
        communicator = communicator_with(headers)
        assert (await communicator.connect())[0]
        first = await communicator.receive_json_from(timeout=5)

        def a_caller_arrives():
            call = Call.objects.create(
                telephony_call_id="CA-new", queue=queue, state="queued", queued_at=timezone.now()
            )
            notify_supervisors(queue_id=call.queue_id)

        await database_sync_to_async(a_caller_arrives)()
        frame = await communicator.receive_json_from(timeout=5)
        await communicator.disconnect()
        return first, frame

    first, frame = async_to_sync(scenario)()

    assert first["totals"]["waiting"] == 0
    assert frame["type"] == "figures"
    assert frame["totals"]["waiting"] == 1


def test_agents_and_strangers_are_refused_at_connect(make_agent):
    dana = make_agent("dana")

    async def scenario(headers):
        communicator = communicator_with(headers)
        connected, code = await communicator.connect()
        await communicator.disconnect()
        return connected, code

    assert async_to_sync(scenario)(socket_headers(dana.user)) == (False, 4403)
    assert async_to_sync(scenario)(socket_headers(None)) == (False, 4403)


def test_staff_may_watch(db):
    admin = User.objects.create_user(username="admin", password="pw-admin", is_staff=True)

    headers = socket_headers(admin)

    async def scenario():
        communicator = communicator_with(headers)
        connected, _ = await communicator.connect()
        snapshot = await communicator.receive_json_from(timeout=5)
        await communicator.disconnect()
        return connected, snapshot["type"]

    assert async_to_sync(scenario)() == (True, "snapshot")
