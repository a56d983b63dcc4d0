"""What a run observed: calls placed and how they ended, reunions, ring-to-offer latency.

Ring to offer is measured from the moment the simulator sent a call's `call.ringing` POST to the
moment a bot's socket received the first offer for that call; offers to people (whose browsers
the simulator does not see) are not measured. Both moments are read from one monotonic clock.

A reunion is counted by the simulator itself: a returning caller's last agent is the one the
directory named at the start (Rapport's record) and, after each call answered in this run, the
agent who answered it, the same way Rapport moves its own record.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass
class Tally:
    placed: int = 0
    answered: int = 0
    abandoned: int = 0
    hung_up_at_stop: int = 0
    refused: int = 0
    returning_answered: int = 0
    reunited: int = 0
    callbacks_asked: int = 0
    callbacks_placed: int = 0
    callbacks_unanswered: int = 0
    callbacks_reached: int = 0
    callbacks_reached_by_own_agent: int = 0
    ring_sent_at: dict[str, float] = field(default_factory=dict)
    ring_to_offer_ms: list[float] = field(default_factory=list)

    def ring_sent(self, call_id: str, at: float) -> None:
        self.ring_sent_at[call_id] = at

    def offer_seen(self, call_id: str, at: float) -> None:
        """Only the first offer of a call counts; a call the simulator did not place is ignored."""
        sent_at = self.ring_sent_at.pop(call_id, None)
        if sent_at is not None:
            self.ring_to_offer_ms.append((at - sent_at) * 1000)

    def answered_call(self, *, had_last_agent: bool, reunited: bool) -> None:
        self.answered += 1
        self.returning_answered += had_last_agent
        self.reunited += reunited

    def callback_reached(self, *, reunited: bool) -> None:
        """A call back the customer answered: with their last agent, a reunion too."""
        self.callbacks_reached += 1
        self.callbacks_reached_by_own_agent += reunited

    def report(self) -> Report:
        return Report(
            callbacks_asked=self.callbacks_asked,
            callbacks_placed=self.callbacks_placed,
            callbacks_unanswered=self.callbacks_unanswered,
            callbacks_reached=self.callbacks_reached,
            callbacks_reached_by_own_agent=self.callbacks_reached_by_own_agent,
            placed=self.placed,
            answered=self.answered,
            abandoned=self.abandoned,
            hung_up_at_stop=self.hung_up_at_stop,
            refused=self.refused,
            returning_answered=self.returning_answered,
            reunited=self.reunited,
            offers_measured=len(self.ring_to_offer_ms),
            ring_to_offer_p50_ms=percentile(self.ring_to_offer_ms, 50),
            ring_to_offer_p99_ms=percentile(self.ring_to_offer_ms, 99),
        )


@dataclass(frozen=True)
class Report:
    placed: int
    answered: int
    abandoned: int
    hung_up_at_stop: int
    refused: int
    returning_answered: int
    reunited: int
    offers_measured: int
    ring_to_offer_p50_ms: float | None
    ring_to_offer_p99_ms: float | None
    callbacks_asked: int = 0
    callbacks_placed: int = 0
    callbacks_unanswered: int = 0
    callbacks_reached: int = 0
    callbacks_reached_by_own_agent: int = 0

    @property
    def reunion_rate(self) -> float | None:
        """Of the returning callers who spoke to someone (answered, or reached by a call back),
        the share who spoke to their last agent."""
        served = self.returning_answered + self.callbacks_reached
        if not served:
            return None
        return (self.reunited + self.callbacks_reached_by_own_agent) / served

    @property
    def abandoned_share(self) -> float | None:
        return self.abandoned / self.placed if self.placed else None

    def lines(self) -> list[str]:
        rate = self.reunion_rate
        reunion = "n/a" if rate is None else f"{rate:.0%}"
        share = self.abandoned_share
        abandoned_share = "n/a" if share is None else f"{share:.0%} of calls placed"
        return [
            f"calls placed:          {self.placed}",
            f"answered:              {self.answered}",
            f"abandoned (patience):  {self.abandoned} ({abandoned_share})",
            f"asked for a call back: {self.callbacks_asked}",
            f"call backs placed:     {self.callbacks_placed} "
            f"({self.callbacks_reached} reached, {self.callbacks_unanswered} not answered, "
            f"{self.callbacks_reached_by_own_agent} by their own agent)",
            f"hung up at stop:       {self.hung_up_at_stop}",
            f"ringing not accepted:  {self.refused}",
            f"reunion rate:          {reunion} "
            f"({self.reunited + self.callbacks_reached_by_own_agent} of "
            f"{self.returning_answered + self.callbacks_reached} returning callers answered or "
            "called back reached their last agent)",
            f"ring -> offer p50:     {_milliseconds(self.ring_to_offer_p50_ms)}",
            f"ring -> offer p99:     {_milliseconds(self.ring_to_offer_p99_ms)} "
            f"({self.offers_measured} offers to bots)",
        ]


def percentile(samples: list[float], rank: float) -> float | None:
    """Nearest-rank percentile: a value that was observed, never an interpolation."""
    if not samples:
        return None
    ordered = sorted(samples)
    position = max(math.ceil(rank / 100 * len(ordered)), 1)
    return ordered[position - 1]


def _milliseconds(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0f} ms"
