"""What one simulation run is asked to do."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

from simulator.callers import CallerDirectory


@dataclass(frozen=True)
class SecondsRange:
    """A random duration, uniform between `shortest` and `longest` seconds."""

    shortest: float
    longest: float

    def __post_init__(self) -> None:
        if not 0 <= self.shortest <= self.longest:
            raise ValueError(f"expected 0 <= {self.shortest} <= {self.longest} seconds")

    def pick(self, rng: random.Random) -> float:
        return rng.uniform(self.shortest, self.longest)


@dataclass(frozen=True)
class BotLogin:
    """A demo agent the simulator plays: logs in like a person, answers like one."""

    username: str
    password: str


@dataclass(frozen=True)
class SimulationConfig:
    base_url: str
    secret: str
    queue_numbers: tuple[str, ...]
    callers: CallerDirectory = field(default_factory=CallerDirectory)
    calls_per_minute: float = 4.0
    # None: place calls until stopped.
    minutes: float | None = None
    bots: tuple[BotLogin, ...] = ()
    control_host: str = "127.0.0.1"
    # None: no control listener; the simulator pulls its instructions instead.
    control_port: int | None = None
    control_path: str = "/control/"
    seed: int | None = None
    patience: SecondsRange = SecondsRange(20, 90)
    talk: SecondsRange = SecondsRange(10, 60)
    bot_pause: SecondsRange = SecondsRange(1.5, 5)
    # After the last call is placed, how long calls in flight may finish before they are hung up.
    drain_seconds: float = 90.0
    poll_seconds: float = 1.0
    # How long to wait for Rapport to answer at all (it may still be starting).
    startup_seconds: float = 60.0
    # Where this line keeps the calls it still owes Rapport an end (simulator/journal.py).
    journal_path: Path | None = None
    # Whether a caller whose patience runs out may ask for a call back instead of hanging up
    # (`call.callback_requested`); off: they abandon, as before the choice. Needs a control URL,
    # where Rapport pushes the `call.dial` of each call back an agent accepted.
    choice: bool = True

    @property
    def control_url(self) -> str | None:
        if self.control_port is None:
            return None
        return f"http://{self.control_host}:{self.control_port}{self.control_path}"
