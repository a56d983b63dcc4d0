"""`/ws/supervisor/`: the dashboard's stream. A snapshot on connect, then coalesced frames.

Every change anywhere pings the `supervisors` group. A screen does not redraw per ping: the
first ping schedules one recompute a moment later, pings meanwhile only mark it needed again,
so a burst of a thousand changes becomes a few frames per second per screen.
"""

from __future__ import annotations

import asyncio
import contextlib

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from customers.audit import record_first_sight
from customers.models import AccessReason
from infrastructure.groups import SUPERVISORS_GROUP, session_group
from infrastructure.metrics import SOCKETS_OPEN
from routing import roles
from supervisor import floor, wall

# Quiet time after the first change before a frame is computed; bounds frames to ~3 a second.
COALESCE_SECONDS = 0.3
# A change whose writer forgot to ping still reaches the wall within this long.
REFRESH_SECONDS = 15
REFUSED = 4403


class SupervisorConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self) -> None:
        self.changed = False
        self.pending: asyncio.Task | None = None
        self.user = self.scope.get("user")
        allowed = await database_sync_to_async(roles.is_supervisor)(self.user)
        if not allowed:
            await self.close(code=REFUSED)
            return
        self.session_key = self.scope["session"].session_key
        self.groups_joined = [SUPERVISORS_GROUP, session_group(self.session_key)]
        for group in self.groups_joined:
            await self.channel_layer.group_add(group, self.channel_name)
        await self.accept()
        self.counted_open = SOCKETS_OPEN.labels(kind="supervisor")
        self.counted_open.inc()
        await self._send_figures("snapshot")
        self.refresher = asyncio.create_task(self._refresh_now_and_then())

    async def disconnect(self, code: int) -> None:
        if getattr(self, "counted_open", None) is not None:
            self.counted_open.dec()
            self.counted_open = None
        for group in getattr(self, "groups_joined", []):
            await self.channel_layer.group_discard(group, self.channel_name)
        for task in (getattr(self, "pending", None), getattr(self, "refresher", None)):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def session_ended(self, event: dict) -> None:
        await self.close(code=REFUSED)

    async def figures_changed(self, event: dict) -> None:
        self.changed = True
        if self.pending is None:
            self.pending = asyncio.create_task(self._send_when_quiet())

    async def _send_when_quiet(self) -> None:
        try:
            while self.changed:
                await asyncio.sleep(COALESCE_SECONDS)
                self.changed = False
                await self._send_figures("figures")
        finally:
            self.pending = None

    async def _refresh_now_and_then(self) -> None:
        while True:
            await asyncio.sleep(REFRESH_SECONDS)
            await self.figures_changed({})

    async def _send_figures(self, kind: str) -> None:
        figures = await database_sync_to_async(_figures_if_signed_in)(self.user, self.session_key)
        if figures is None:
            await self.close(code=REFUSED)
            return
        await self.send_json({"type": kind, **figures})


def _figures_if_signed_in(user, session_key: str) -> dict | None:
    """The wall names callers: a session that has ended since the socket opened, or a person
    no longer a supervisor, gets nothing."""
    if not roles.still_signed_in(user, session_key, role=roles.SUPERVISOR_GROUP):
        return None
    figures = wall.figures(caller_names=True)
    record_first_sight(
        shown=floor.callers_named(figures), user=user, reason=AccessReason.SUPERVISOR
    )
    return figures
