"""A call's life, in one place: its states and the moves allowed between them.

ringing -> queued -> offered -> connected <-> held -> wrap_up -> ended
A caller who hangs up before anyone answers is `abandoned`; `transferred` is a connected call
handed to another agent. `ended` and `abandoned` are final.
"""

from django.db import models


class CallState(models.TextChoices):
    RINGING = "ringing", "Ringing"
    QUEUED = "queued", "Queued"
    OFFERED = "offered", "Offered to an agent"
    CONNECTED = "connected", "Connected"
    HELD = "held", "On hold"
    TRANSFERRED = "transferred", "Transferred"
    WRAP_UP = "wrap_up", "Wrap-up"
    ENDED = "ended", "Ended"
    ABANDONED = "abandoned", "Abandoned"


S = CallState

ALLOWED_MOVES: dict[str, frozenset[str]] = {
    S.RINGING: frozenset({S.QUEUED, S.OFFERED, S.CONNECTED, S.TRANSFERRED, S.ENDED, S.ABANDONED}),
    S.QUEUED: frozenset({S.OFFERED, S.CONNECTED, S.TRANSFERRED, S.ENDED, S.ABANDONED}),
    # An offer declined or timed out puts the call back in the queue.
    S.OFFERED: frozenset({S.QUEUED, S.CONNECTED, S.TRANSFERRED, S.ENDED, S.ABANDONED}),
    S.CONNECTED: frozenset({S.HELD, S.TRANSFERRED, S.WRAP_UP, S.ENDED}),
    S.HELD: frozenset({S.CONNECTED, S.TRANSFERRED, S.WRAP_UP, S.ENDED}),
    S.TRANSFERRED: frozenset({S.CONNECTED, S.HELD, S.WRAP_UP, S.ENDED}),
    S.WRAP_UP: frozenset({S.ENDED}),
    S.ENDED: frozenset(),
    S.ABANDONED: frozenset(),
}

WAITING_STATES = frozenset({S.RINGING, S.QUEUED, S.OFFERED})
TALKING_STATES = frozenset({S.CONNECTED, S.HELD, S.TRANSFERRED})
FINAL_STATES = frozenset({S.ENDED, S.ABANDONED})


class IllegalCallMove(Exception):
    def __init__(self, current: str, target: str) -> None:
        super().__init__(f"a call cannot move from {current} to {target}")
        self.current = current
        self.target = target


def can_move(current: str, target: str) -> bool:
    return target in ALLOWED_MOVES[current]


def check_move(current: str, target: str) -> None:
    if not can_move(current, target):
        raise IllegalCallMove(current, target)
