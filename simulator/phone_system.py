"""The phone system's calls: each rings, waits for an agent as long as its caller's patience
lasts, talks, and hangs up, telling Rapport every step with a signed event.

A call's life, one coroutine per call:

    ringing --(connect: push or pull)--> answered --(talk time, or stop)--> ended `completed`
       ├------(patience runs out, asks to be called back)-----------------> callback_requested
       └------(patience runs out, or stop)--------------------------------> ended `abandoned`

A call back (Rapport's signed `call.dial`, once an agent accepted it) is a call the phone system
places, under the id Rapport gave it: the customer answers and talks to that agent, or does not
answer (`no-answer`), and Rapport tries again later.

Connects are idempotent: the first one for a waiting call connects it, any later one (a
retried push, a pull that sees the same decision) changes nothing.

Until Rapport has accepted a call's `call.ended`, the call is owed an end; with a journal the
owed ends outlive the run (simulator/journal.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import random
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass, field

from simulator.callers import RETURNING, Caller
from simulator.config import SecondsRange
from simulator.journal import CallJournal
from simulator.report import Tally
from simulator.telephony_api import TelephonyApi

logger = logging.getLogger(__name__)

# Calls that are over are remembered this long (in calls) to tell a late push "gone", not "who?".
REMEMBERED_FINISHED_CALLS = 10_000
# Of the callers whose patience runs out, the share by hold tolerance who ask for a call back
# when they may (callers who avoid holding ask most); the others hang up.
HOLD_TOLERANCES = {"fine": 0.35, "avoid": 0.35, "unknown": 0.3}
ASKS_FOR_CALLBACK = {"fine": 0.3, "avoid": 0.7, "unknown": 0.5}
# Of the call backs placed, the share the customer answers; how long the phone rings first.
ANSWERS_CALLBACK = 0.8
CALLBACK_RING_SECONDS = SecondsRange(2, 6)
FINAL_STATES = ("ended", "abandoned")


class ConnectOutcome(enum.Enum):
    CONNECTING = "connecting"
    ALREADY_CONNECTED = "already connected"
    UNKNOWN_CALL = "unknown call"
    CALL_OVER = "caller hung up"


@dataclass(eq=False)
class SimulatedCall:
    call_id: str
    caller: Caller
    dialled: str
    patience_seconds: float
    # A call back Rapport asked for (`call.dial`): placed by the phone system, not rung in.
    callback_agent: str | None = None
    rang: bool = False
    agent: str | None = None
    hang_up_requested: bool = False
    over: asyncio.Event = field(default_factory=asyncio.Event)
    # Set when something the waiting coroutine must react to happens: a connect or a hang-up.
    woken: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def waiting(self) -> bool:
        return self.agent is None and not self.over.is_set()


class PhoneSystem:
    def __init__(
        self,
        *,
        api: TelephonyApi,
        tally: Tally,
        rng: random.Random,
        talk: SecondsRange,
        last_agents: dict[str, str],
        journal: CallJournal | None = None,
        choice: bool = True,
    ) -> None:
        self.choice = choice
        self.api = api
        self.tally = tally
        self.rng = rng
        self.talk = talk
        self.last_agents = last_agents
        self.journal = journal
        self.calls: dict[str, SimulatedCall] = {}
        self._owed_ends: set[str] = set()
        self._finished: OrderedDict[str, None] = OrderedDict()
        self._tasks: set[asyncio.Task] = set()

    def place_call(self, caller: Caller, dialled: str, *, patience_seconds: float) -> SimulatedCall:
        # Not from the seeded generator: a rerun with the same --seed must not reuse the ids
        # of calls Rapport already knows.
        call = SimulatedCall(
            call_id=f"SIM-{secrets.token_hex(6)}",
            caller=caller,
            dialled=dialled,
            patience_seconds=patience_seconds,
        )
        self.calls[call.call_id] = call
        self._owe_end(call.call_id)
        self.tally.placed += 1
        task = asyncio.create_task(self._play(call), name=call.call_id)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return call

    def connect(self, call_id: str, agent: str, decision_id: int | None) -> ConnectOutcome:
        """Rapport named the agent for a call (pushed to the control URL, or pulled)."""
        call = self.calls.get(call_id)
        if call is None:
            known = call_id in self._finished
            return ConnectOutcome.CALL_OVER if known else ConnectOutcome.UNKNOWN_CALL
        if call.agent is not None:
            return ConnectOutcome.ALREADY_CONNECTED
        if call.hang_up_requested:
            return ConnectOutcome.CALL_OVER
        call.agent = agent
        call.woken.set()
        logger.debug("%s connect to %s (decision %s)", call_id, agent, decision_id)
        return ConnectOutcome.CONNECTING

    def dial(self, call_id: str, number: str, agent: str) -> ConnectOutcome:
        """Rapport asks the phone system to call a customer back for `agent` (`call.dial`)."""
        if call_id in self.calls:
            return ConnectOutcome.ALREADY_CONNECTED
        if call_id in self._finished:
            return ConnectOutcome.CALL_OVER
        call = SimulatedCall(
            call_id=call_id,
            caller=Caller(number=number, kind=RETURNING),
            dialled=number,
            patience_seconds=0,
            callback_agent=agent,
        )
        self.calls[call_id] = call
        self._owe_end(call_id)
        self.tally.callbacks_placed += 1
        task = asyncio.create_task(self._play_callback(call), name=call_id)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return ConnectOutcome.CONNECTING

    async def end_leftover_calls(self, call_ids: list[str]) -> None:
        """Calls an earlier run could not end: their callers hang up now."""
        for call_id in call_ids:
            self._owe_end(call_id)
        ended = await asyncio.gather(
            *(self._send_end(call_id, reason="failed") for call_id in call_ids)
        )
        logger.info("ended %d of %d calls an earlier run left", sum(ended), len(call_ids))

    async def pull_instructions(self, poll_seconds: float) -> None:
        """For a phone system that does not own Rapport's control URL: ask about each waiting
        call about once every `poll_seconds`."""
        while True:
            waiting = [call for call in self.calls.values() if call.rang and call.waiting]
            await asyncio.gather(*(self._pull(call) for call in waiting))
            await asyncio.sleep(poll_seconds)

    async def wait_until_quiet(self, timeout: float) -> bool:
        """Wait for every call in flight to end by itself; False when some were still going."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                while self.calls:
                    await next(iter(self.calls.values())).over.wait()
                return True
        return not self.calls

    async def hang_up_all(self, timeout: float = 15.0) -> None:
        """Every caller still on the line hangs up now; waits for their `call.ended` to go out."""
        for call in list(self.calls.values()):
            call.hang_up_requested = True
            call.woken.set()
        if not self._tasks:
            return
        _done, stuck = await asyncio.wait(set(self._tasks), timeout=timeout)
        for task in stuck:
            task.cancel()

    async def _play(self, call: SimulatedCall) -> None:
        # Drawn whether or not callers may choose: the same seed places the same calls.
        tolerance = self.rng.choices(list(HOLD_TOLERANCES), weights=list(HOLD_TOLERANCES.values()))[
            0
        ]
        asks = self.rng.random() < ASKS_FOR_CALLBACK[tolerance]
        try:
            await self._ring(call)
            if call.rang:
                await self._wait_woken(call, call.patience_seconds)
                if call.agent is not None:
                    await self._answer_and_talk(call, call.agent)
                elif self.choice and asks and not call.hang_up_requested:
                    await self._ask_for_callback(call)
                else:
                    await self._abandon(call)
        finally:
            self._forget(call)

    async def _ask_for_callback(self, call: SimulatedCall) -> None:
        asked = await self.api.post_event("call.callback_requested", call.call_id)
        if asked:
            self._settle(call.call_id)
            self.tally.callbacks_asked += 1
            logger.info("%s asked for a call back after %.0fs", call.call_id, call.patience_seconds)
        else:
            await self._abandon(call)

    async def _play_callback(self, call: SimulatedCall) -> None:
        agent = call.callback_agent
        try:
            await self._wait_woken(call, CALLBACK_RING_SECONDS.pick(self.rng))
            answers = self.rng.random() < ANSWERS_CALLBACK
            if call.hang_up_requested or not answers:
                self.tally.callbacks_unanswered += 1
                await self._send_end(call.call_id, reason="no-answer")
                logger.info("%s: call back not answered", call.call_id)
                return
            await self.api.post_event("call.answered", call.call_id, agent=agent)
            reunited = self.last_agents.get(call.caller.number) == agent
            self.tally.callback_reached(reunited=reunited)
            self.last_agents[call.caller.number] = agent
            logger.info("%s: called back by %s", call.call_id, agent)
            call.woken.clear()
            if not call.hang_up_requested:
                await self._wait_woken(call, self.talk.pick(self.rng))
            await self._send_end(call.call_id, reason="completed")
        finally:
            self._forget(call)

    async def _ring(self, call: SimulatedCall) -> None:
        self.tally.ring_sent(call.call_id, time.monotonic())
        call.rang = await self.api.post_event(
            "call.ringing", call.call_id, **{"from": call.caller.number}, to=call.dialled
        )
        if not call.rang:
            self.tally.refused += 1
            self._settle(call.call_id)
            return
        logger.info(
            "%s placed: %s (%s) -> %s, patience %.0fs",
            call.call_id,
            call.caller.number,
            call.caller.kind,
            call.dialled,
            call.patience_seconds,
        )

    async def _abandon(self, call: SimulatedCall) -> None:
        await self._send_end(call.call_id, reason="abandoned")
        if call.hang_up_requested:
            self.tally.hung_up_at_stop += 1
            logger.info("%s hung up while waiting: the simulator is stopping", call.call_id)
        else:
            self.tally.abandoned += 1
            logger.info("%s abandoned after %.0fs", call.call_id, call.patience_seconds)

    async def _answer_and_talk(self, call: SimulatedCall, agent: str) -> None:
        await self.api.post_event("call.answered", call.call_id, agent=agent)
        self._count_answer(call, agent)
        logger.info("%s connected to %s", call.call_id, agent)
        call.woken.clear()
        talk_seconds = self.talk.pick(self.rng)
        if not call.hang_up_requested:
            await self._wait_woken(call, talk_seconds)
        await self._send_end(call.call_id, reason="completed")
        logger.info("%s ended (completed) with %s", call.call_id, agent)

    def _count_answer(self, call: SimulatedCall, agent: str) -> None:
        number = call.caller.number
        last_agent = self.last_agents.get(number) if call.caller.kind == RETURNING else None
        self.tally.answered_call(
            had_last_agent=last_agent is not None, reunited=last_agent == agent
        )
        if call.caller.kind == RETURNING:
            self.last_agents[number] = agent

    async def _send_end(self, call_id: str, *, reason: str) -> bool:
        ended = await self.api.post_event("call.ended", call_id, reason=reason)
        if ended:
            self._settle(call_id)
        return ended

    def _owe_end(self, call_id: str) -> None:
        self._owed_ends.add(call_id)
        self._write_journal()

    def _settle(self, call_id: str) -> None:
        self._owed_ends.discard(call_id)
        self._write_journal()

    def _write_journal(self) -> None:
        if self.journal is not None:
            self.journal.record(self._owed_ends)

    async def _pull(self, call: SimulatedCall) -> None:
        instruction = await self.api.call_instruction(call.call_id)
        if not instruction or not instruction.get("agent"):
            return
        if instruction.get("state") in FINAL_STATES:
            return
        self.connect(call.call_id, instruction["agent"], instruction.get("decision_id"))

    @staticmethod
    async def _wait_woken(call: SimulatedCall, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(call.woken.wait(), seconds)

    def _forget(self, call: SimulatedCall) -> None:
        call.over.set()
        self.calls.pop(call.call_id, None)
        self.tally.ring_sent_at.pop(call.call_id, None)
        self._finished[call.call_id] = None
        while len(self._finished) > REMEMBERED_FINISHED_CALLS:
            self._finished.popitem(last=False)
