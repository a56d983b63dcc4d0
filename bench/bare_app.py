"""The wire without Rapport: the anchor `bench/goals.py` measures the screen-pop against.

A plain ASGI app on uvicorn and channels-redis's layer as the library ships it, and nothing else
(`BARE_LAYER=rapport`: Rapport's own subclass instead, whose group send waits for Redis twice,
not four times; `goals.py --wire-layer rapport`):
`POST /send/<group>` does one `group_send` to that group and answers 202; a WebSocket on
`/ws/<group>` joins the group and forwards every message it receives. No Django, no database.

    REDIS_URL=redis://... uvicorn bench.bare_app:app
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os

from channels_redis.core import RedisChannelLayer

from infrastructure.channel_layer import PatientRedisChannelLayer

Layer = PatientRedisChannelLayer if os.environ.get("BARE_LAYER") == "rapport" else RedisChannelLayer
layer = Layer(hosts=[{"address": os.environ["REDIS_URL"], "socket_timeout": 30}], prefix="bare")


async def app(scope, receive, send) -> None:
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
    elif scope["type"] == "http":
        await _http(scope, receive, send)
    elif scope["type"] == "websocket":
        await _websocket(scope, receive, send)


async def _http(scope, receive, send) -> None:
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    group = scope["path"].rsplit("/", 1)[-1]
    await layer.group_send(group, {"type": "bare.message", "text": body.decode()})
    await send(
        {
            "type": "http.response.start",
            "status": 202,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": json.dumps({"status": "sent"}).encode()})


async def _websocket(scope, receive, send) -> None:
    group = scope["path"].rsplit("/", 1)[-1]
    if (await receive())["type"] != "websocket.connect":
        return
    channel = await layer.new_channel()
    await layer.group_add(group, channel)
    await send({"type": "websocket.accept"})
    from_client = asyncio.ensure_future(receive())
    from_layer = asyncio.ensure_future(layer.receive(channel))
    try:
        while True:
            done, _ = await asyncio.wait(
                {from_client, from_layer}, return_when=asyncio.FIRST_COMPLETED
            )
            if from_client in done:
                if from_client.result()["type"] == "websocket.disconnect":
                    return
                from_client = asyncio.ensure_future(receive())
            if from_layer in done:
                await send({"type": "websocket.send", "text": from_layer.result()["text"]})
                from_layer = asyncio.ensure_future(layer.receive(channel))
    finally:
        from_client.cancel()
        from_layer.cancel()
        # The anchor is the wire, not channels-redis's pool: a burst of closes that runs out
        # of connections (MaxConnectionsError) is not the bare app's figure to report.
        with contextlib.suppress(Exception):
            await layer.group_discard(group, channel)
