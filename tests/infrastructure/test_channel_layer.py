"""The channel layer's group send: what channels-redis's does (every member under its capacity
gets the message; expired members and full channels get nothing), in two waits for Redis, not
four. Its receive: one command per message, no backup copy to write and delete."""

import asyncio
import secrets

from asgiref.sync import async_to_sync
from django.conf import settings
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from infrastructure.channel_layer import PatientRedisChannelLayer


def _layer(**config) -> PatientRedisChannelLayer:
    base = settings.CHANNEL_LAYERS["default"]["CONFIG"]
    return PatientRedisChannelLayer(
        **{**base, "prefix": f"test-layer-{secrets.token_hex(4)}", **config}
    )


def test_every_member_gets_the_message_in_two_round_trips(monkeypatch):
    layer = _layer()
    counted: list[str] = []
    command, pipeline = Redis.execute_command, Pipeline.execute

    async def one_command(self, *args, **kwargs):
        counted.append(f"command {args[0]}")
        return await command(self, *args, **kwargs)

    async def one_pipeline(self, *args, **kwargs):
        counted.append("pipeline")
        return await pipeline(self, *args, **kwargs)

    async def scenario() -> list[dict]:
        # Two sockets of one server process share its key; a third channel has its own.
        first, second = await layer.new_channel(), await layer.new_channel()
        elsewhere = "elsewhere.channel"
        for channel in (first, second, elsewhere):
            await layer.group_add("floor", channel)
        monkeypatch.setattr(Redis, "execute_command", one_command)
        monkeypatch.setattr(Pipeline, "execute", one_pipeline)
        await layer.group_send("floor", {"type": "note", "text": "hello"})
        monkeypatch.undo()
        received = [await layer.receive(channel) for channel in (first, second, elsewhere)]
        await layer.flush()
        return received

    received = async_to_sync(scenario)()

    assert [message["text"] for message in received] == ["hello"] * 3
    assert counted == ["pipeline", "pipeline"]


def test_expired_members_and_full_channels_get_nothing():
    layer = _layer(group_expiry=60, capacity=1)

    async def scenario() -> tuple[list[str], dict[str, int]]:
        await layer.group_add("floor", "fresh.channel")
        await layer.group_add("floor", "full.channel")
        await layer.send("full.channel", {"type": "note", "text": "already waiting"})
        # A member added longer ago than group_expiry: its socket is long gone.
        connection = layer.connection(layer.consistent_hash("floor"))
        await connection.zadd(layer._group_key("floor"), {"stale.channel": 1})
        await layer.group_send("floor", {"type": "note", "text": "hello"})
        members = await connection.zrange(layer._group_key("floor"), 0, -1)
        queued = {
            name: await connection.zcard(layer.prefix + name)
            for name in ("fresh.channel", "full.channel", "stale.channel")
        }
        await layer.flush()
        return sorted(member.decode() for member in members), queued

    members, queued = async_to_sync(scenario)()

    assert members == ["fresh.channel", "full.channel"]
    assert queued == {"fresh.channel": 1, "full.channel": 1, "stale.channel": 0}


def test_a_message_is_received_with_one_command_and_no_backup_copy(monkeypatch):
    layer = _layer()
    counted: list[str] = []
    command = Redis.execute_command

    async def one_command(self, *args, **kwargs):
        counted.append(args[0])
        return await command(self, *args, **kwargs)

    async def scenario() -> tuple[list[dict], list[bytes]]:
        first, second = await layer.new_channel(), await layer.new_channel()
        await layer.send(first, {"type": "note", "text": "one"})
        await layer.send(second, {"type": "note", "text": "two"})
        monkeypatch.setattr(Redis, "execute_command", one_command)
        received = [await layer.receive(first), await layer.receive(second)]
        # channels-redis deletes its backup copy in a task of its own: give it its moment.
        await asyncio.sleep(0.1)
        monkeypatch.undo()
        backups = await layer.connection(0).keys(f"{layer.prefix}*$inflight")
        await layer.flush()
        return received, backups

    received, backups = async_to_sync(scenario)()

    assert [message["text"] for message in received] == ["one", "two"]
    assert counted == ["BZPOPMIN", "BZPOPMIN"]
    assert backups == []
