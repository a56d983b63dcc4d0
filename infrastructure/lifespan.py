"""ASGI lifespan: the server tells the application it is starting before it takes requests.

Channels' `ProtocolTypeRouter` knows no lifespan; this answers it and runs `on_startup` on the
server's own event loop, so what the first request would open is opened before it comes, and
`on_shutdown` as the server stops.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any


class Lifespan:
    def __init__(
        self,
        app: Any,
        *,
        on_startup: Callable[[], Awaitable[None]],
        on_shutdown: Callable[[], None] = lambda: None,
    ) -> None:
        self.app = app
        self.on_startup = on_startup
        self.on_shutdown = on_shutdown

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await self.on_startup()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self.on_shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return
