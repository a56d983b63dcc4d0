"""The three state machines of routing, in one place: a call's life, an offer's, an agent's status.

Each lists its states and the moves allowed between them; an illegal move raises IllegalMove
rather than overwriting the state.

A call:   ringing -> queued -> offered -> connected <-> held -> wrap_up -> ended
          A caller who hangs up before anyone answers is `abandoned`; `transferred` is a connected
          call handed to another agent. `ended` and `abandoned` are final.
An offer: offered -> accepted | declined | timed_out | withdrawn, each final.
An agent: offline, available and break at will (their own choice, or a supervisor's);
          busy when a call is theirs; wrap-up only after a call, never from anything but busy.
          `break` is shown as "not ready" and always has a reason from the deployment's list
          (settings.NOT_READY_REASONS): lunch, coaching... or `missed_call`, set by the router.
"""

from django.conf import settings
from django.db import models


class IllegalMove(Exception):
    def __init__(self, kind: str, current: str, target: str) -> None:
        super().__init__(f"{kind} cannot move from {current} to {target}")
        self.current = current
        self.target = target


def _check(kind: str, moves: dict[str, frozenset[str]], current: str, target: str) -> None:
    if target not in moves[current]:
        raise IllegalMove(kind, current, target)


# --- a call ---------------------------------------------------------------------------------


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


C = CallState

CALL_MOVES: dict[str, frozenset[str]] = {
    C.RINGING: frozenset({C.QUEUED, C.OFFERED, C.CONNECTED, C.TRANSFERRED, C.ENDED, C.ABANDONED}),
    C.QUEUED: frozenset({C.OFFERED, C.CONNECTED, C.TRANSFERRED, C.ENDED, C.ABANDONED}),
    # An offer declined or timed out puts the call back in the queue.
    C.OFFERED: frozenset({C.QUEUED, C.CONNECTED, C.TRANSFERRED, C.ENDED, C.ABANDONED}),
    C.CONNECTED: frozenset({C.HELD, C.TRANSFERRED, C.WRAP_UP, C.ENDED}),
    C.HELD: frozenset({C.CONNECTED, C.TRANSFERRED, C.WRAP_UP, C.ENDED}),
    # A transferred call may be transferred again, to a third agent or back.
    C.TRANSFERRED: frozenset({C.CONNECTED, C.HELD, C.TRANSFERRED, C.WRAP_UP, C.ENDED}),
    C.WRAP_UP: frozenset({C.ENDED}),
    C.ENDED: frozenset(),
    C.ABANDONED: frozenset(),
}

WAITING_STATES = frozenset({C.RINGING, C.QUEUED, C.OFFERED})
TALKING_STATES = frozenset({C.CONNECTED, C.HELD, C.TRANSFERRED})
FINAL_STATES = frozenset({C.ENDED, C.ABANDONED})


def can_move_call(current: str, target: str) -> bool:
    return target in CALL_MOVES[current]


def check_call_move(current: str, target: str) -> None:
    _check("a call", CALL_MOVES, current, target)


# --- an offer -------------------------------------------------------------------------------


class OfferState(models.TextChoices):
    OFFERED = "offered", "Offered"
    ACCEPTED = "accepted", "Accepted"
    DECLINED = "declined", "Declined"
    TIMED_OUT = "timed_out", "Timed out"
    WITHDRAWN = "withdrawn", "Withdrawn"


OFFER_MOVES: dict[str, frozenset[str]] = {
    OfferState.OFFERED: frozenset(
        {OfferState.ACCEPTED, OfferState.DECLINED, OfferState.TIMED_OUT, OfferState.WITHDRAWN}
    ),
    OfferState.ACCEPTED: frozenset(),
    OfferState.DECLINED: frozenset(),
    OfferState.TIMED_OUT: frozenset(),
    OfferState.WITHDRAWN: frozenset(),
}

# The agent did not take the call: it is not offered to them again.
REFUSED_OFFER_STATES = frozenset({OfferState.DECLINED, OfferState.TIMED_OUT})


def check_offer_move(current: str, target: str) -> None:
    _check("an offer", OFFER_MOVES, current, target)


# --- an agent -------------------------------------------------------------------------------


class AgentStatus(models.TextChoices):
    OFFLINE = "offline", "Offline"
    AVAILABLE = "available", "Available"
    BUSY = "busy", "On a call"
    WRAP_UP = "wrap_up", "Wrap-up"
    BREAK = "break", "Not ready"


A = AgentStatus

# What a person (the agent, or a supervisor for them) may choose; busy and wrap-up follow calls.
SELF_SERVICE_STATUSES = frozenset({A.AVAILABLE, A.BREAK, A.OFFLINE})

AGENT_MOVES: dict[str, frozenset[str]] = {
    # The telephony system may connect an agent to a caller whatever Rapport thought they were
    # doing: busy is reachable from every status.
    A.OFFLINE: frozenset({A.AVAILABLE, A.BREAK, A.BUSY}),
    A.AVAILABLE: frozenset({A.OFFLINE, A.BREAK, A.BUSY}),
    A.BREAK: frozenset({A.OFFLINE, A.AVAILABLE, A.BUSY}),
    A.BUSY: frozenset({A.WRAP_UP, A.AVAILABLE, A.BREAK, A.OFFLINE}),
    A.WRAP_UP: frozenset({A.AVAILABLE, A.BREAK, A.OFFLINE, A.BUSY}),
}


def check_agent_move(current: str, target: str) -> None:
    _check("an agent", AGENT_MOVES, current, target)


# --- why an agent is not ready --------------------------------------------------------------

# Set by the router when an offer rings out unanswered (routing.offers.time_out_offer).
MISSED_CALL = "missed_call"
# Reasons only the system sets: a person choosing one is refused.
SYSTEM_NOT_READY_REASONS = frozenset({MISSED_CALL})


def not_ready_reasons() -> list[str]:
    """Every reason this deployment knows, in its order; the system's own always among them."""
    reasons = [code.strip() for code in settings.NOT_READY_REASONS if code.strip()]
    reasons += [code for code in sorted(SYSTEM_NOT_READY_REASONS) if code not in reasons]
    return list(dict.fromkeys(reasons))


def choosable_not_ready_reasons() -> list[str]:
    """What an agent or a supervisor may pick."""
    return [code for code in not_ready_reasons() if code not in SYSTEM_NOT_READY_REASONS]


def not_ready_choices() -> list[dict[str, str]]:
    """The reasons a screen offers, with their labels."""
    return [
        {"code": code, "label": not_ready_reason_label(code)}
        for code in choosable_not_ready_reasons()
    ]


def default_not_ready_reason() -> str:
    return choosable_not_ready_reasons()[0] if choosable_not_ready_reasons() else MISSED_CALL


def not_ready_reason_label(code: str) -> str:
    return code.replace("_", " ").strip().capitalize() if code else ""


def status_label(status: str, not_ready_reason: str = "") -> str:
    """What a screen calls an agent's status: "Not ready — Lunch" for a break with a reason."""
    label = AgentStatus(status).label if status in AgentStatus.values else status
    if status == AgentStatus.BREAK and not_ready_reason:
        return f"{label} — {not_ready_reason_label(not_ready_reason)}"
    return label


def status_labels() -> dict[str, str]:
    """What a screen calls each status, by code."""
    return {status.value: status.label for status in AgentStatus}
