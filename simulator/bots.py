"""Bot agents: demo agents played through the same doors a browser uses.

A bot logs in with its password (Django session and CSRF cookies), holds `/ws/agent/` open and
reconnects when it drops (the `state` message it gets first heals whatever it missed), makes
itself available, accepts each offer after a human pause, and after each call writes a short
note for the customer (when the call had one) and says it is ready. A bot put on break (an offer
it let time out, a supervisor) comes back after a pause: bots are there to take calls.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import Coroutine
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from simulator.config import BotLogin, SecondsRange
from simulator.report import Tally

logger = logging.getLogger(__name__)

LOGIN_PATH = "/accounts/login/"
SOCKET_PATH = "/ws/agent/"
FIRST_RECONNECT_DELAY_SECONDS = 0.5
LONGEST_RECONNECT_DELAY_SECONDS = 5.0
NOTE_TEXTS = (
    "Simulated call: sorted the exchange, a half size up.",
    "Simulated call: asked about the late delivery; tracking sent by text.",
    "Simulated call: looking for comfortable work shoes, will call back.",
    "Simulated call: refund confirmed, happy with that.",
)


class BotLoginFailed(Exception):
    pass


class BotAgent:
    def __init__(
        self,
        *,
        login: BotLogin,
        base_url: str,
        rng: random.Random,
        pause: SecondsRange,
        tally: Tally,
    ) -> None:
        self.login = login
        self.username = login.username
        self.base_url = base_url.rstrip("/")
        self.rng = rng
        self.pause = pause
        self.tally = tally
        self.http = httpx.AsyncClient(base_url=self.base_url, timeout=10, trust_env=False)
        self.status: str | None = None
        self.available = asyncio.Event()
        self.notes_written = 0
        # The agent socket while it is open; a new one after each reconnect.
        self.socket: ClientConnection | None = None
        self._stopping = False
        self._tasks: set[asyncio.Task] = set()
        self._ringing: dict[int, str] = {}
        self._offers_taken: set[int] = set()
        self._wrapping_up: set[str] = set()
        self._noted_calls: set[str] = set()
        # Each queue's wrap-up code ids (GET /api/queues/), read once.
        self._codes_by_queue: dict[int, list[int]] | None = None
        self._coming_back = False

    async def log_in(self) -> None:
        """A Django session, as the login form gives a person; BotLoginFailed if refused."""
        self.http.cookies.clear()
        await self.http.get(LOGIN_PATH)
        response = await self.http.post(
            LOGIN_PATH,
            data={
                "username": self.login.username,
                "password": self.login.password,
                "csrfmiddlewaretoken": self.http.cookies.get("csrftoken", ""),
            },
        )
        if response.status_code != 302 or not self.http.cookies.get("sessionid"):
            raise BotLoginFailed(
                f"{self.username} could not log in at {self.base_url}{LOGIN_PATH} "
                f"(HTTP {response.status_code}): check the username and password"
            )

    async def run(self) -> None:
        """Hold the agent socket until stopped, reconnecting (and logging in again) as needed."""
        delay = FIRST_RECONNECT_DELAY_SECONDS
        while not self._stopping:
            try:
                await self._hold_socket()
                delay = FIRST_RECONNECT_DELAY_SECONDS
                reason = "closed"
            except InvalidStatus as refused:
                reason = f"refused with HTTP {refused.response.status_code}"
                if not await self._log_in_again():
                    return
            except (ConnectionClosed, InvalidHandshake, OSError, TimeoutError) as dropped:
                reason = f"{type(dropped).__name__}: {dropped}"
            if self._stopping:
                return
            logger.info("%s's socket dropped (%s); reconnecting", self.username, reason)
            await asyncio.sleep(delay)
            delay = min(delay * 2, LONGEST_RECONNECT_DELAY_SECONDS)

    async def stop(self, timeout: float) -> None:
        """Finish the wrap-ups in hand, go offline, close the socket."""
        self._stopping = True
        if self._tasks:
            _done, unfinished = await asyncio.wait(set(self._tasks), timeout=timeout)
            for task in unfinished:
                task.cancel()
        await self._send({"type": "set_status", "status": "offline"})
        if self.socket is not None:
            await self.socket.close()
        await self.http.aclose()

    async def _log_in_again(self) -> bool:
        try:
            await self.log_in()
        except BotLoginFailed as refused:
            logger.error("%s stops: %s", self.username, refused)
            return False
        except httpx.HTTPError:
            pass
        return True

    async def _hold_socket(self) -> None:
        url = urlsplit(self.base_url)
        socket_scheme = "wss" if url.scheme == "https" else "ws"
        cookies = "; ".join(f"{cookie.name}={cookie.value}" for cookie in self.http.cookies.jar)
        async with connect(
            urlunsplit((socket_scheme, url.netloc, url.path + SOCKET_PATH, "", "")),
            # Channels refuses sockets whose Origin is not one of Rapport's own hosts.
            origin=f"{url.scheme}://{url.netloc}",
            additional_headers={"Cookie": cookies},
            proxy=None,
        ) as socket:
            self.socket = socket
            try:
                async for raw in socket:
                    self._handle(json.loads(raw))
            finally:
                self.socket = None

    def _handle(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == "state":
            self._on_status((message.get("agent") or {}).get("status"), pause=False)
            if message.get("offer"):
                self._on_offer(message["offer"])
            if message.get("call"):
                self._on_call(message["call"])
        elif kind == "offer":
            self._on_offer(message)
        elif kind == "offer_ended":
            self._ringing.pop(message.get("offer_id"), None)
        elif kind == "call":
            self._on_call(message)
        elif kind == "status":
            self._on_status(message.get("status"), pause=True)
        elif kind == "error":
            logger.debug("%s was told: %s", self.username, message.get("message"))

    def _on_status(self, status: str | None, *, pause: bool) -> None:
        self.status = status
        if status == "available":
            self.available.set()
        else:
            self.available.clear()
        if status in ("offline", "break") and not self._stopping and not self._coming_back:
            self._coming_back = True
            self._spawn(self._become_available(pause=pause))

    def _on_offer(self, offer: dict[str, Any]) -> None:
        offer_id, call_id = offer.get("offer_id"), offer.get("call_id", "")
        self.tally.offer_seen(call_id, time.monotonic())
        if not isinstance(offer_id, int) or offer_id in self._offers_taken:
            return
        self._ringing[offer_id] = call_id
        self._offers_taken.add(offer_id)
        self._spawn(self._accept(offer_id, call_id))

    def _on_call(self, call: dict[str, Any]) -> None:
        call_id = call.get("call_id", "")
        if call.get("state") != "wrap_up" or call_id in self._wrapping_up:
            return
        self._wrapping_up.add(call_id)
        self._spawn(self._wrap_up(call_id, call.get("customer_id"), call.get("queue_id")))

    async def _become_available(self, *, pause: bool) -> None:
        try:
            if pause:
                await asyncio.sleep(self.pause.pick(self.rng))
            if not self._stopping:
                await self._send({"type": "set_status", "status": "available"})
        finally:
            self._coming_back = False

    async def _accept(self, offer_id: int, call_id: str) -> None:
        await asyncio.sleep(self.pause.pick(self.rng))
        if self._stopping or offer_id not in self._ringing:
            return
        if await self._send({"type": "accept", "offer_id": offer_id}):
            logger.info("%s accepted %s", self.username, call_id)
        else:
            # The socket dropped: the `state` message of the next one offers it again.
            self._offers_taken.discard(offer_id)

    async def _wrap_up(self, call_id: str, customer_id: int | None, queue_id: int | None) -> None:
        await asyncio.sleep(self.pause.pick(self.rng))
        if customer_id is not None and call_id not in self._noted_calls:
            await self._write_note(call_id, customer_id)
        codes = (await self._wrap_up_codes()).get(queue_id or 0)
        if codes:
            await self._send(
                {"type": "wrap_up_code", "call_id": call_id, "code": self.rng.choice(codes)}
            )
        if await self._send({"type": "ready"}):
            logger.info("%s ready after %s", self.username, call_id)
        else:
            self._wrapping_up.discard(call_id)

    async def _wrap_up_codes(self) -> dict[int, list[int]]:
        """The queues' wrap-up codes, so the wall counts how the bots' calls ended; none when
        they cannot be read (the bot goes ready without, unless a queue requires one)."""
        if self._codes_by_queue is None:
            try:
                response = await self.http.get("/api/queues/")
                queues = response.json() if response.status_code == 200 else []
            except (httpx.HTTPError, ValueError):
                queues = []
            self._codes_by_queue = {
                queue["id"]: [code["id"] for code in queue.get("wrap_up_codes", [])]
                for queue in queues
            }
        return self._codes_by_queue

    async def _write_note(self, call_id: str, customer_id: int) -> None:
        try:
            response = await self.http.post(
                f"/api/customers/{customer_id}/notes/",
                json={"text": self.rng.choice(NOTE_TEXTS), "call_id": call_id},
                headers={"X-CSRFToken": self.http.cookies.get("csrftoken", "")},
            )
        except httpx.HTTPError as failed:
            logger.warning("%s could not write a note on %s: %s", self.username, call_id, failed)
            return
        if response.status_code != 201:
            logger.warning(
                "%s's note on %s refused: %s %s",
                self.username,
                call_id,
                response.status_code,
                response.text[:200],
            )
            return
        self._noted_calls.add(call_id)
        self.notes_written += 1
        logger.info("%s wrote a note for customer %s on %s", self.username, customer_id, call_id)

    async def _send(self, message: dict[str, Any]) -> bool:
        socket = self.socket
        if socket is None:
            return False
        try:
            await socket.send(json.dumps(message))
        except ConnectionClosed:
            return False
        return True

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
