"""The bench's sockets: WebSocket clients held open in their hundreds, each noting when the
message the bench waits for reached it (an offer for a call, a token sent through the bare app),
and the agents' and supervisors' sessions they sign in with."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from collections.abc import Awaitable, Iterable

import websockets

# Sockets are opened, and by default closed, this many at a time.
BATCH = 20


def signed_in(base_url: str, path: str, session_key: str, **options):
    """A WebSocket to Rapport's `path`, as a browser signed in with `session_key` on the server's
    own origin; `options` go to `websockets.connect`."""
    return websockets.connect(
        base_url.replace("http://", "ws://") + path,
        additional_headers={"Cookie": f"sessionid={session_key}", "Origin": base_url},
        **options,
    )


def session_keys(users) -> list[str]:
    """Inside Django: a signed-in session for each user, as a login makes it; their keys."""
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore

    keys = []
    for user in users:
        session = SessionStore()
        session[SESSION_KEY] = str(user.pk)
        session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
        session[HASH_SESSION_KEY] = user.get_session_auth_hash()
        session.create()
        keys.append(session.session_key)
    return keys


class Fleet:
    """Sockets held open, each listened to. `arrived[key]` is when the message `key` last reached
    one of them (`time.perf_counter()`, taken before the message is read); `waiter(key)` is set
    then. A message's key is its text; subclasses say otherwise."""

    def __init__(self) -> None:
        self.sockets: list = []
        self.listeners: list[asyncio.Task] = []
        self.arrived: dict[str, float] = {}
        self._waiters: dict[str, asyncio.Event] = {}

    def waiter(self, key: str) -> asyncio.Event:
        return self._waiters.setdefault(key, asyncio.Event())

    async def wait_for(self, keys: list[str], *, timeout: float) -> None:
        """Until every one of `keys` has arrived, or `timeout` seconds."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(
                asyncio.gather(*(self.waiter(key).wait() for key in keys)), timeout=timeout
            )

    async def open(self, connections: Iterable[Awaitable]) -> list:
        """Open the sockets `connections` make, `BATCH` at a time, and listen on each; the new
        sockets."""
        pending = iter(connections)
        opened: list = []
        while batch := list(itertools.islice(pending, BATCH)):
            opened += await asyncio.gather(*batch)
        self.sockets += opened
        self.listeners += [asyncio.create_task(self._listen(ws)) for ws in opened]
        return opened

    def key(self, ws, raw: str) -> str | None:
        return raw

    async def _listen(self, ws) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            async for raw in ws:
                now = time.perf_counter()
                key = self.key(ws, raw)
                if key is not None:
                    self.arrived[key] = now
                    self.waiter(key).set()

    async def close(self, *, all_at_once: bool = False) -> list:
        """Stop listening and close every socket, `BATCH` at a time or all at once; what each
        close returned or raised."""
        for task in self.listeners:
            task.cancel()
        size = len(self.sockets) if all_at_once else BATCH
        closed: list = []
        for start in range(0, len(self.sockets), max(size, 1)):
            closed += await asyncio.gather(
                *(ws.close() for ws in self.sockets[start : start + size]),
                return_exceptions=True,
            )
        return closed


class Agents(Fleet):
    """Agents' sockets on `/ws/agent/`, each signed in and set available; `arrived[call_id]` is
    when the offer for that call rang on one of them.

    `open_timeout`, `ping_interval`: as `websockets.connect` takes them (its default pings the
    server every 20 s; a browser never does). `ready_within`: seconds for a batch of agents to
    become available."""

    def __init__(
        self,
        base_url: str,
        *,
        open_timeout: float = 30,
        ping_interval: float | None = 20,
        ready_within: float = 30,
    ) -> None:
        super().__init__()
        self.base_url = base_url
        self.options = {
            "max_size": 2**22,
            "open_timeout": open_timeout,
            "ping_interval": ping_interval,
        }
        self.ready_within = ready_within
        self.available: set = set()

    async def sign_in(self, sessions: list[str]) -> None:
        """One more socket per session; each agent sets themselves available, and this waits
        until every one of them is."""
        opened = await self.open(
            signed_in(self.base_url, "/ws/agent/", key, **self.options) for key in sessions
        )
        for ws in opened:
            await ws.send(json.dumps({"type": "set_status", "status": "available"}))
        deadline = time.monotonic() + self.ready_within
        while not self.available.issuperset(opened):
            if time.monotonic() > deadline:
                ready = len(self.available.intersection(opened))
                raise SystemExit(f"only {ready} of {len(opened)} agents became available")
            await asyncio.sleep(0.05)

    def key(self, ws, raw: str) -> str | None:
        message = json.loads(raw)
        if message["type"] == "offer":
            return message["call_id"]
        if message["type"] == "status" and message["status"] == "available":
            self.available.add(ws)
        return None
