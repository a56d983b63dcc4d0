"""Who rings: returning customers (most of the mix), the shared household line, new numbers.

The directory is handed in by whoever runs the simulator (the management command reads it from
the database); the simulator itself knows no customer.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field

RETURNING = "returning"
HOUSEHOLD = "household"
NEW = "new"

# Shares of the calls; a kind with no numbers gives its share to new callers.
CALLER_MIX = {RETURNING: 0.7, HOUSEHOLD: 0.1, NEW: 0.2}
# Of the returning callers, the share whose last agent is a person rather than a bot: the person
# trying the demo should soon see one of their own callers come back to them.
PEOPLES_CALLERS_SHARE = 0.7

# 555-0100 to 555-0199 are fictional in every area code: numbers that belong to no one.
NEW_NUMBER_AREA_CODES = (202, 206, 212, 213, 303, 305, 312, 404, 503, 512, 617, 646, 702, 718)


@dataclass(frozen=True)
class Caller:
    number: str
    kind: str


@dataclass(frozen=True)
class CallerDirectory:
    """`returning`: numbers of one known customer each; `household`: numbers several customers
    share; `last_agents`: the telephony identity of each returning number's last agent, so a
    short run can already tell whether callers reach their own agent."""

    returning: tuple[str, ...] = ()
    household: tuple[str, ...] = ()
    last_agents: Mapping[str, str] = field(default_factory=dict)
    # Returning numbers whose last agent is a person at a console, not one of the bots.
    peoples_callers: tuple[str, ...] = ()

    def pick(self, rng: random.Random) -> Caller:
        pools = {RETURNING: self.returning, HOUSEHOLD: self.household}
        kinds = [kind for kind in CALLER_MIX if kind == NEW or pools[kind]]
        kind = rng.choices(kinds, weights=[CALLER_MIX[kind] for kind in kinds])[0]
        if kind == NEW:
            return Caller(number=self._new_number(rng), kind=NEW)
        if kind == RETURNING and self.peoples_callers and rng.random() < PEOPLES_CALLERS_SHARE:
            return Caller(number=rng.choice(self.peoples_callers), kind=kind)
        return Caller(number=rng.choice(pools[kind]), kind=kind)

    def _new_number(self, rng: random.Random) -> str:
        known = {*self.returning, *self.household}
        while True:
            area_code = rng.choice(NEW_NUMBER_AREA_CODES)
            number = f"+1{area_code}5550{rng.randrange(100, 200)}"
            if number not in known:
                return number


def seconds_to_next_call(rng: random.Random, calls_per_minute: float) -> float:
    """Gaps between independent arrivals are exponential (a Poisson process)."""
    return rng.expovariate(calls_per_minute / 60.0)
