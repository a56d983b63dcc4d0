"""How the benches send: each request at its turn at a fixed rate, or as fast as senders can."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable


async def paced(one: Callable[[int, float], Awaitable[None]], *, count: int, rate: float) -> None:
    """`one(index, scheduled)` for each of `count` indexes, each started at its turn, `rate` a
    second from now. `scheduled` is its turn (`time.perf_counter()`): a latency measured from it
    does not hide a stalled server behind a sender that waited."""
    start = time.perf_counter()

    async def at_its_turn(index: int) -> None:
        scheduled = start + index / rate
        await asyncio.sleep(max(0.0, scheduled - time.perf_counter()))
        await one(index, scheduled)

    await asyncio.gather(*(at_its_turn(index) for index in range(count)))


async def flat_out(
    send: Callable[[], Awaitable[int | None]], *, senders: int, seconds: float
) -> tuple[dict[int, int], float]:
    """`senders` loops, each awaiting `send()` again and again until `seconds` are up or it
    returns None (nothing left to send). The statuses it returned, counted, and the seconds
    it took."""
    statuses: dict[int, int] = {}
    started = time.perf_counter()
    deadline = started + seconds

    async def sender() -> None:
        while time.perf_counter() < deadline:
            status = await send()
            if status is None:
                return
            statuses[status] = statuses.get(status, 0) + 1

    await asyncio.gather(*(sender() for _ in range(senders)))
    return statuses, time.perf_counter() - started
