"""The telephony system's side of a bench: who calls, the signed events it sends, and callers
ringing in at a fixed rate while the agents' sockets note when each offer rang."""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
from standardwebhooks.webhooks import Webhook

from bench.fleet import Fleet
from bench.load import paced
from telephony.signing import signature_headers

EVENTS_PATH = "/api/telephony/events/"
# The number every call rings, the screen-pop queue's.
QUEUE_NUMBER = "+18005550100"

# As many callers with one previous call as with 10,000, each calling again and again, so the
# two kinds take the same routing paths and differ only in the history read.
LIGHT_CALLERS = 10
HEAVY_CALLERS = 10
HEAVY_HISTORY = 10_000

# Agents who answer the webhook benches' calls (`90NN`), in a queue of their own, so their calls
# ring nobody in the screen-pop's team; a team, so answers do not all queue on one agent's row.
WEBHOOK_AGENTS = 50
WEBHOOK_QUEUE = "webhook-bench"


def light_number(n: int) -> str:
    return f"+1415600{n:04d}"


def heavy_number(n: int) -> str:
    return f"+1415700{n:04d}"


def callers() -> dict[str, list[str]]:
    """The two kinds of caller, by the name their figures go under."""
    return {
        "one_previous_call": [light_number(n) for n in range(LIGHT_CALLERS)],
        "10000_previous_calls": [heavy_number(n) for n in range(HEAVY_CALLERS)],
    }


def webhook_agent(n: int) -> str:
    """The telephony identity of webhook agent `n`."""
    return f"90{n % WEBHOOK_AGENTS:02d}"


def now() -> str:
    return datetime.now(tz=UTC).isoformat()


def ringing(call_id: str, caller: str, *, occurred_at: str, queue: str | None = None) -> dict:
    payload = {
        "type": "call.ringing",
        "call_id": call_id,
        "occurred_at": occurred_at,
        "from": caller,
        "to": QUEUE_NUMBER,
    }
    return payload if queue is None else {**payload, "queue": queue}


def answered(call_id: str, agent: str, *, occurred_at: str) -> dict:
    return {"type": "call.answered", "call_id": call_id, "occurred_at": occurred_at, "agent": agent}


def ended(call_id: str, reason: str, *, occurred_at: str) -> dict:
    return {"type": "call.ended", "call_id": call_id, "occurred_at": occurred_at, "reason": reason}


def call_in_full(call_id: str, number: int, *, queue: str | None = None) -> list[dict]:
    """Call `number` rings (from a number of its own), is answered by a webhook agent and ends:
    every event a real change of the call's state."""
    occurred_at = now()
    return [
        ringing(call_id, f"+1415555{number % 10000:04d}", occurred_at=occurred_at, queue=queue),
        answered(call_id, webhook_agent(number), occurred_at=occurred_at),
        ended(call_id, "completed", occurred_at=occurred_at),
    ]


class Signer:
    """Signs events with the run's secret (Standard Webhooks), as the telephony system does."""

    def __init__(self, secret: str) -> None:
        self.webhook = Webhook(secret)

    def headers(self, body: str) -> dict[str, str]:
        return signature_headers(webhook=self.webhook, body=body)

    def request(self, payload: dict) -> tuple[bytes, dict[str, str]]:
        """The body and headers of a signed POST of `payload`."""
        body = json.dumps(payload)
        return body.encode(), {"content-type": "application/json", **self.headers(body)}


class WholeCalls:
    """Whole calls (`call_in_full`) as signed requests, signed before the clock starts (signing
    is the sender's cost, not the server's); call ids go on from one batch to the next."""

    def __init__(self, signer: Signer, *, run_id: str, queue: str | None = None) -> None:
        self.signer = signer
        self.run_id = run_id
        self.queue = queue
        self.calls = 0

    def batch(self, count: int) -> list[tuple[bytes, dict[str, str]]]:
        requests = []
        while len(requests) < count:
            self.calls += 1
            call_id = f"bench-{self.run_id}-{self.calls}"
            for payload in call_in_full(call_id, self.calls, queue=self.queue):
                requests.append(self.signer.request(payload))
        return requests[:count]


@dataclass
class Ring:
    """One caller's `call.ringing`: when the POST left, when its answer came back, and that."""

    kind: str
    sent: float
    answered: float
    status: int


async def ring(
    client: httpx.AsyncClient,
    signer: Signer,
    fleet: Fleet,
    *,
    name: str,
    rate: float,
    seconds: float,
    after: Callable[[str], Awaitable[None]] | None = None,
) -> dict[str, Ring]:
    """`rate` calls/s for `seconds`, the kinds of caller taking turns (so neither kind runs on a
    quieter machine than the other), each a signed `call.ringing`; then up to 30 s for every
    call's offer to reach `fleet` (`fleet.arrived[call_id]`). `after(call_id)`: awaited after
    each call's POST. Returns the calls by id (`<name>-<kind>-<run>-<index>`)."""
    kinds = callers()
    names = list(kinds)
    run = secrets.token_hex(3)
    rings: dict[str, Ring] = {}

    async def one(index: int, scheduled: float) -> None:
        kind = names[index % len(names)]
        numbers = kinds[kind]
        call_id = f"{name}-{kind}-{run}-{index}"
        fleet.waiter(call_id)
        body, headers = signer.request(
            ringing(call_id, numbers[(index // len(names)) % len(numbers)], occurred_at=now())
        )
        sent = time.perf_counter()
        response = await client.post(EVENTS_PATH, content=body, headers=headers)
        rings[call_id] = Ring(kind, sent, time.perf_counter(), response.status_code)
        if after is not None:
            await after(call_id)

    await paced(one, count=int(rate * seconds), rate=rate)
    await fleet.wait_for(list(rings), timeout=30)
    return rings


def statuses(rings: dict[str, Ring]) -> dict[int, int]:
    counts: dict[int, int] = {}
    for each in rings.values():
        counts[each.status] = counts.get(each.status, 0) + 1
    return counts


async def hang_up(client: httpx.AsyncClient, signer: Signer, call_id: str) -> None:
    """The caller hangs up (`call.ended`, abandoned): a ringing offer is withdrawn, its agent
    free again."""
    body, headers = signer.request(ended(call_id, "abandoned", occurred_at=now()))
    await client.post(EVENTS_PATH, content=body, headers=headers)


async def hang_up_all(client: httpx.AsyncClient, signer: Signer, call_ids: list[str]) -> None:
    """Every caller hangs up at once; then two seconds for the router to settle."""
    await asyncio.gather(*(hang_up(client, signer, call_id) for call_id in call_ids))
    await asyncio.sleep(2)


async def hang_up_after_offer(
    client: httpx.AsyncClient, signer: Signer, fleet: Fleet, call_id: str, *, seconds: float
) -> None:
    """The caller hangs up `seconds` after their offer rang (or 30 s without one)."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(fleet.waiter(call_id).wait(), timeout=30)
    await asyncio.sleep(seconds)
    await hang_up(client, signer, call_id)
