"""One run: wait for Rapport, end the calls an earlier run left (with a journal), open the
control URL (or start pulling), log the bots in, place calls at the configured rate, then stop
cleanly: no call is left ringing in Rapport.

Stopping after `minutes`: no new calls, the calls in flight get `drain_seconds` to finish, the
rest are hung up. Stopping on SIGINT/SIGTERM: every call in flight is hung up at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import math
import random
import signal
import threading
from collections.abc import Coroutine
from types import TracebackType
from typing import Any

import httpx
from standardwebhooks import Webhook

from simulator.bots import BotAgent
from simulator.callers import Caller, seconds_to_next_call
from simulator.config import SimulationConfig
from simulator.control import ControlListener
from simulator.journal import CallJournal
from simulator.phone_system import PhoneSystem, SimulatedCall
from simulator.report import Report, Tally
from simulator.telephony_api import TelephonyApi

logger = logging.getLogger(__name__)

HEALTH_PATH = "/api/health/"
BOTS_READY_SECONDS = 15.0
# A bot finishing its wrap-up when the run stops: its pause, then a note and `ready`.
BOT_WRAP_UP_GRACE_SECONDS = 5.0


class RapportUnreachable(Exception):
    pass


class Simulation:
    def __init__(self, config: SimulationConfig) -> None:
        self.config = config
        self.rng = random.Random(config.seed)
        self.tally = Tally()
        self.webhook = Webhook(config.secret)
        self.http = httpx.AsyncClient(base_url=config.base_url, timeout=10, trust_env=False)
        self.journal = None if config.journal_path is None else CallJournal(config.journal_path)
        self.phone = PhoneSystem(
            api=TelephonyApi(http=self.http, webhook=self.webhook),
            tally=self.tally,
            rng=random.Random(self.rng.random()),
            talk=config.talk,
            last_agents=dict(config.callers.last_agents),
            journal=self.journal,
            # Only a phone system that takes Rapport's pushes learns of a call back to place.
            choice=config.choice and config.control_port is not None,
        )
        self.bots = [
            BotAgent(
                login=login,
                base_url=config.base_url,
                rng=random.Random(self.rng.random()),
                pause=config.bot_pause,
                tally=self.tally,
            )
            for login in config.bots
        ]
        self.control = None
        if config.control_port is not None:
            self.control = ControlListener(
                webhook=self.webhook,
                on_connect=self.phone.connect,
                on_dial=self.phone.dial,
                host=config.control_host,
                port=config.control_port,
                path=config.control_path,
            )
        self._background: list[asyncio.Task] = []

    async def __aenter__(self) -> Simulation:
        try:
            await self.start()
        except BaseException:
            await self.stop()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()

    async def start(self) -> None:
        leftovers = self.journal.open() if self.journal is not None else []
        await self._wait_for_rapport()
        if leftovers:
            await self.phone.end_leftover_calls(leftovers)
        if self.control is not None:
            await self.control.start()
            logger.info("taking call.connect at %s", self.config.control_url)
        else:
            pulling = self.phone.pull_instructions(self.config.poll_seconds)
            self._background.append(asyncio.create_task(pulling))
            logger.info("no control URL: pulling instructions every %ss", self.config.poll_seconds)
        for bot in self.bots:
            await bot.log_in()
            self._background.append(asyncio.create_task(bot.run(), name=bot.username))
        await self._wait_for_bots()

    async def stop(self) -> None:
        if self.phone.calls:
            logger.info("hanging up %d calls in flight", len(self.phone.calls))
        await self.phone.hang_up_all()
        grace = self.config.bot_pause.longest + BOT_WRAP_UP_GRACE_SECONDS
        await asyncio.gather(*(bot.stop(timeout=grace) for bot in self.bots))
        for task in self._background:
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        self._background.clear()
        if self.control is not None:
            await self.control.close()
        await self.http.aclose()
        if self.journal is not None:
            self.journal.close()

    async def run(self, stop: asyncio.Event) -> Report:
        """Place calls until `minutes` pass or `stop` is set; then let calls finish and stop."""
        async with self:
            await self.place_calls(stop)
            if not stop.is_set():
                await _first_of(self.phone.wait_until_quiet(self.config.drain_seconds), stop.wait())
        return self.tally.report()

    async def place_calls(self, stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        minutes = self.config.minutes
        deadline = None if minutes is None else loop.time() + minutes * 60
        while True:
            wait = None
            if self.config.calls_per_minute > 0:
                wait = seconds_to_next_call(self.rng, self.config.calls_per_minute)
            if deadline is not None:
                wait = min(wait if wait is not None else math.inf, deadline - loop.time())
            if await _stopped_within(stop, wait):
                return
            if deadline is not None and loop.time() >= deadline:
                return
            self.place_call()

    def place_call(
        self,
        caller: Caller | None = None,
        *,
        dialled: str | None = None,
        patience_seconds: float | None = None,
    ) -> SimulatedCall:
        """A call now: from the directory's mix and the configured patience, unless given."""
        if patience_seconds is None:
            patience_seconds = self.config.patience.pick(self.rng)
        return self.phone.place_call(
            caller or self.config.callers.pick(self.rng),
            dialled or self.rng.choice(self.config.queue_numbers),
            patience_seconds=patience_seconds,
        )

    async def _wait_for_rapport(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.config.startup_seconds
        for attempt in itertools.count():
            with contextlib.suppress(httpx.HTTPError):
                if (await self.http.get(HEALTH_PATH)).status_code == 200:
                    return
            if attempt == 0:
                logger.info("waiting for Rapport at %s", self.config.base_url)
            if loop.time() > deadline:
                raise RapportUnreachable(f"Rapport does not answer at {self.config.base_url}")
            await asyncio.sleep(0.5)

    async def _wait_for_bots(self) -> None:
        waiting = asyncio.gather(*(bot.available.wait() for bot in self.bots))
        try:
            await asyncio.wait_for(waiting, BOTS_READY_SECONDS)
        except TimeoutError:
            late = [bot.username for bot in self.bots if not bot.available.is_set()]
            logger.warning("not available yet: %s; placing calls anyway", ", ".join(late))


def run_until_signalled(config: SimulationConfig) -> Report:
    """The whole run in a fresh event loop; SIGINT and SIGTERM stop it cleanly."""
    return asyncio.run(_run_with_signals(config))


async def _run_with_signals(config: SimulationConfig) -> Report:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    previous_handlers = {}
    if threading.current_thread() is threading.main_thread():
        for signal_number in (signal.SIGINT, signal.SIGTERM):
            previous_handlers[signal_number] = signal.getsignal(signal_number)
            loop.add_signal_handler(signal_number, _stop_on_signal, stop, signal_number)
    try:
        return await Simulation(config).run(stop)
    finally:
        for signal_number, handler in previous_handlers.items():
            loop.remove_signal_handler(signal_number)
            signal.signal(signal_number, handler)


def _stop_on_signal(stop: asyncio.Event, signal_number: int) -> None:
    if not stop.is_set():
        logger.info("%s: stopping", signal.Signals(signal_number).name)
    stop.set()


async def _stopped_within(stop: asyncio.Event, seconds: float | None) -> bool:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
    return stop.is_set()


async def _first_of(*waits: Coroutine[Any, Any, Any]) -> None:
    tasks = [asyncio.ensure_future(wait) for wait in waits]
    await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
