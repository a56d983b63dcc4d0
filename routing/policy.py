"""The routing policy: the rules that decide who gets a caller and who may see one, each stated
once. The router (routing.router) and the route hint a PBX asks (telephony.route_hint) both
take the last-agent step from here, so they cannot disagree.

- `hold_rule`: how long a caller is held for their busy last agent.
- `last_agent_step`: what happens to a caller whose last agent is known: offered to them, held
  for them, or sent to the queue, and why.
- `why_agent_sees_call`: whether an agent sees a call (and so its caller) now.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db.models import F, Q

from customers.models import Customer, HoldTolerance, Pace, Provenance
from routing.models import Agent, Call, DecisionReason, Offer, Queue
from routing.selectors import AgentStanding
from routing.states import FINAL_STATES, AgentStatus, OfferState

# --- the hold rule ----------------------------------------------------------------------------

AVOIDS_HOLDING = "avoids_holding"
IN_A_RUSH = "in_a_rush"
FINE_ON_HOLD = "fine_on_hold"
UNKNOWN_HOLD = "unknown"
# A caller who is held only briefly for their busy last agent.
HOLD_AVERSE_RULES = frozenset({AVOIDS_HOLDING, IN_A_RUSH})
# What the caller said outranks what an agent inferred; a value of unknown origin (an import)
# counts least.
_PROVENANCE_RANK = {
    Provenance.SAID_BY_CALLER: 0,
    Provenance.SAID_ON_KEYPAD: 0,
    Provenance.INFERRED_BY_AGENT: 1,
}


@dataclass(frozen=True)
class HoldRule:
    """How long a caller is held for their busy last agent, and which of their preferences
    decided it."""

    rule: str
    provenance: str
    wait_limit_seconds: int

    @property
    def averse(self) -> bool:
        return self.rule in HOLD_AVERSE_RULES

    def detail(self) -> dict[str, Any]:
        return {
            "hold_rule": self.rule,
            "provenance": self.provenance,
            "wait_limit_seconds": self.wait_limit_seconds,
        }


def hold_rule(*, customer: Customer | None, queue: Queue) -> HoldRule:
    """The wait for a busy last agent follows the caller:

    - avoids holding, or in a rush (pace brisk): the queue's `hold_averse_wait_seconds` (never
      more than its full window; 0: straight to the queue);
    - fine on hold, or nothing known: the queue's `last_agent_wait_seconds`.

    When preferences disagree (fine on hold but brisk), what the caller said beats what an agent
    inferred ("ask, don't assume"); between two of equal standing the shorter wait wins, since
    holding someone who wants speed costs more than sending a patient caller to a colleague.

    Routing is service and applies every preference whatever the consent; what the agent is told
    of it is filtered like the card (routing.messages.hold_explanation).
    """
    full = queue.last_agent_wait_seconds
    short = min(queue.hold_averse_wait_seconds, full)
    signals = []
    if customer is not None:
        if customer.hold_tolerance == HoldTolerance.AVOID:
            signals.append(HoldRule(AVOIDS_HOLDING, customer.hold_tolerance_source, short))
        if customer.pace == Pace.BRISK:
            signals.append(HoldRule(IN_A_RUSH, customer.pace_source, short))
        if customer.hold_tolerance == HoldTolerance.FINE:
            signals.append(HoldRule(FINE_ON_HOLD, customer.hold_tolerance_source, full))
    if not signals:
        return HoldRule(UNKNOWN_HOLD, Provenance.UNKNOWN, full)
    # `min` keeps the first of equal keys, and the list is in order of precedence.
    return min(
        signals,
        key=lambda signal: (
            _PROVENANCE_RANK.get(signal.provenance, len(_PROVENANCE_RANK)),
            signal.wait_limit_seconds,
        ),
    )


# --- the last-agent step ----------------------------------------------------------------------

OFFER = "offer"
HOLD = "hold"
KEEP_WAITING = "keep_waiting"
TO_QUEUE = "to_queue"


@dataclass(frozen=True)
class LastAgentStep:
    """What happens to a caller whose last agent is known, and the decision that says why:

    - OFFER: ring the last agent now (for the queue's offer time-out);
    - HOLD: hold the caller for them, `wait_seconds` at most (a decision is recorded);
    - KEEP_WAITING: the hold decided earlier still runs (nothing recorded);
    - TO_QUEUE: open the call to the queue (a decision names the last agent and why not them).
    """

    action: str
    reason: str = ""
    wait_seconds: int = 0
    detail: dict[str, Any] = field(default_factory=dict)
    # The caller's hold rule, when it decided the step (a busy agent at the router's first look).
    hold: HoldRule | None = None


def last_agent_step(
    standing: AgentStanding | None,
    *,
    hold: HoldRule,
    first: bool,
    wait_until: datetime | None,
    now: datetime,
) -> LastAgentStep:
    """The router's last-agent rule. `standing` None: another router holds the agent (they are
    being changed), as good as busy. `first`: the router's first look at the call (a phone
    system asking whom to ring first is always that). `wait_until`: the hold decided earlier.

    An agent who no longer takes calls (out of the `agent` group, or deactivated), is offline
    or not ready, or no longer serves the queue, is passed over at once; a free one is offered
    the call; a busy one (on a call, in wrap-up, ringing for another caller) is waited for as
    long as the caller's hold rule allows, only once."""
    if standing is not None and not standing.takes_calls:
        return LastAgentStep(
            TO_QUEUE, DecisionReason.LAST_AGENT_UNAVAILABLE, detail={"why": "not_an_agent"}
        )
    if standing is not None and not standing.serves_queue:
        return LastAgentStep(
            TO_QUEUE, DecisionReason.LAST_AGENT_UNAVAILABLE, detail={"why": "not_in_queue"}
        )
    if standing is not None and standing.status in (AgentStatus.OFFLINE, AgentStatus.BREAK):
        return LastAgentStep(
            TO_QUEUE, DecisionReason.LAST_AGENT_UNAVAILABLE, detail={"why": standing.status}
        )
    if standing is not None and standing.free:
        reason = DecisionReason.LAST_AGENT if first else DecisionReason.WAITING_LAST_AGENT_FREED
        return LastAgentStep(OFFER, reason)
    status = standing.status if standing is not None else "locked"
    if wait_until is None and first:
        if hold.wait_limit_seconds == 0:
            reason = (
                DecisionReason.LAST_AGENT_BUSY_NOT_HELD
                if hold.averse
                else DecisionReason.LAST_AGENT_WAIT_EXPIRED
            )
            return LastAgentStep(
                TO_QUEUE, reason, detail={"status": status, **hold.detail()}, hold=hold
            )
        return LastAgentStep(
            HOLD,
            DecisionReason.LAST_AGENT_BUSY_WAITED,
            wait_seconds=hold.wait_limit_seconds,
            detail={"status": status, **hold.detail()},
            hold=hold,
        )
    if wait_until is not None and wait_until > now:
        return LastAgentStep(KEEP_WAITING)
    return LastAgentStep(
        TO_QUEUE, DecisionReason.LAST_AGENT_WAIT_EXPIRED, detail={"status": status}
    )


# --- who sees a call --------------------------------------------------------------------------

# What `why_agent_sees_call` reads of the agent.
AGENT_FIELDS_SEEING_CALLS = ("id", "status", "wrap_up_call")


def why_agent_sees_call(*, agent: Agent, among: Q) -> tuple[str, int] | None:
    """Whether the agent sees one of the calls `among` selects now, and why: ("offer" | "call",
    the call's id), or None. The one statement of the rule (docs/privacy.md): an agent sees a
    call

    - while it rings for them (an offer still ringing): "offer";
    - while it is theirs: they are its agent and it has not ended (accepted and being
      connected, connected, held, transferred to them): "call";
    - while a hand-off of the call they accepted is carried out (the phone system is moving
      the caller to them): "call";
    - during their wrap-up, the call they wrap up (`Agent.wrap_up_call`: the call that just
      ended, or the one they just handed to a colleague): "call".

    Nothing else: an offer they accepted counts only while the call is still theirs (not once
    it was answered at another agent, handed on, or sent back to the queue because their phone
    did not answer), and the wrap-up's call closes when the wrap-up ends. `agent` needs
    AGENT_FIELDS_SEEING_CALLS. At most three small queries (four for a busy agent)."""
    calls = Call.objects.filter(among)
    ringing = (
        Offer.objects.filter(
            agent_id=agent.id,
            state=OfferState.OFFERED,
            call_id__in=calls.exclude(state__in=FINAL_STATES).values("id"),
        )
        .values_list("call_id", flat=True)
        .first()
    )
    if ringing is not None:
        return ("offer", ringing)
    theirs = (
        calls.filter(agent_id=agent.id)
        .exclude(state__in=FINAL_STATES)
        .values_list("id", flat=True)
        .first()
    )
    if theirs is not None:
        return ("call", theirs)
    if agent.status == AgentStatus.BUSY:
        # A hand-off they accepted, while the phone system moves the caller to them: the call
        # is still the first agent's (routing.transfers).
        handed_to_them = (
            Offer.objects.filter(
                agent_id=agent.id,
                state=OfferState.ACCEPTED,
                handoff_from__isnull=False,
                call__agent_id=F("handoff_from_id"),
                call_id__in=calls.exclude(state__in=FINAL_STATES).values("id"),
            )
            .values_list("call_id", flat=True)
            .first()
        )
        if handed_to_them is not None:
            return ("call", handed_to_them)
    if agent.status == AgentStatus.WRAP_UP and agent.wrap_up_call_id is not None:
        # The telephony side may end the call before the agent has finished their wrap-up.
        wrapping_up = calls.filter(id=agent.wrap_up_call_id).values_list("id", flat=True).first()
        if wrapping_up is not None:
            return ("call", wrapping_up)
    return None
