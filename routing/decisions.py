"""Routing decisions: every choice the router makes about a call, with its reason, is a row
(`RoutingDecision`), one log line, and, when it is about a returning caller's last agent, a
count of reunion outcomes (`rapport_reunions_total`, docs/monitoring.md)."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.utils import timezone

from infrastructure.database import rows
from infrastructure.log_fields import call_fields
from infrastructure.metrics import REUNIONS, count_on_commit
from routing.models import Call, DecisionReason, Offer, RoutingDecision

logger = logging.getLogger(__name__)

# What the router decided about a returning caller's last agent, each counted under its own
# reason: offered to them at once or once they were free; held for them while busy; or gone
# past them (busy and not held, away, the hold expired, they declined or let it ring out).
REUNION_OUTCOMES = frozenset(
    {
        DecisionReason.LAST_AGENT,
        DecisionReason.WAITING_LAST_AGENT_FREED,
        DecisionReason.LAST_AGENT_BUSY_WAITED,
        DecisionReason.LAST_AGENT_BUSY_NOT_HELD,
        DecisionReason.LAST_AGENT_UNAVAILABLE,
        DecisionReason.LAST_AGENT_WAIT_EXPIRED,
        DecisionReason.LAST_AGENT_DECLINED,
    }
)
# An offer that rang out, or a phone that did not take the call, is the last agent's miss
# when it was theirs.
LAST_AGENT_TIMED_OUT = "last_agent_timed_out"


@dataclass
class RoutingPass:
    """What the router read and decided about a call in the transaction that routes it for the
    first time, handed to what shows the call: the card reuses the read instead of repeating it,
    and the hold story is told from `decisions` without reading them back."""

    # The caller's last agent (`selectors.last_agent`) for the call's customer and queue.
    last_agent: dict[str, Any] | None
    # Every decision on the call: none came before this pass.
    decisions: list[str] = field(default_factory=list)


def record_decision(
    *,
    call: Call,
    reason: str,
    agent_id: int | None = None,
    offer: Offer | None = None,
    started: float | None = None,
    now: datetime | None = None,
    detail: dict[str, Any] | None = None,
    routing_pass: RoutingPass | None = None,
) -> RoutingDecision:
    now = now or timezone.now()
    decision = RoutingDecision(
        call=call,
        agent_id=agent_id,
        offer=offer,
        reason=reason,
        decided_at=now,
        caller_waited_ms=waited_ms(call, now),
        took_ms=took_ms(started),
        detail=detail or {},
    )
    log_decision(call, reason, agent_id, offered=offer is not None, routing_pass=routing_pass)
    # Written as SQL, prepared: most routings record a decision besides the offer's.
    with rows.prepared_cursor() as cursor:
        cursor.execute(
            _DECISION_SQL,
            [
                call.id,
                agent_id,
                None if offer is None else offer.id,
                reason,
                now,
                decision.caller_waited_ms,
                decision.took_ms,
                json.dumps(decision.detail, cls=DjangoJSONEncoder),
            ],
        )
        decision.id = cursor.fetchone()[0]
    decision._state.adding = False
    return decision


_DECISION_SQL = f"""
    INSERT INTO {RoutingDecision._meta.db_table}
        (call_id, agent_id, offer_id, reason, decided_at, caller_waited_ms, took_ms, detail)
    VALUES (%s, %s::bigint, %s::bigint, %s, %s, %s::integer, %s::integer, %s::jsonb)
    RETURNING id
"""


def waited_ms(call: Call, now: datetime) -> int | None:
    if call.queued_at is None:
        return None
    return max(0, int((now - call.queued_at).total_seconds() * 1000))


def took_ms(started: float | None) -> int | None:
    return None if started is None else int((time.monotonic() - started) * 1000)


def log_decision(
    call: Call,
    reason: str,
    agent_id: int | None,
    *,
    offered: bool,
    routing_pass: RoutingPass | None = None,
) -> None:
    """The decision's log line and its reunion count; noted in the `routing_pass` it was made
    in. It says "offered to"
    only for a decision that made an offer: an operator reading "offered to agent 1" twice for
    one call would take it for a call offered to two agents."""
    if routing_pass is not None:
        routing_pass.decisions.append(reason)
    outcome = reunion_outcome(call, reason, agent_id)
    if outcome is not None:
        count_on_commit(REUNIONS.labels(outcome=outcome))
    if agent_id is None:
        about = ""
    elif offered:
        about = f", offered to agent {agent_id}"
    else:
        about = f", about agent {agent_id}"
    logger.info(
        "call %r: routed, %s%s",
        call.telephony_call_id,
        reason,
        about,
        extra=call_fields(call.telephony_call_id, agent_id),
    )


def reunion_outcome(call: Call, reason: str, agent_id: int | None) -> str | None:
    """The `rapport_reunions_total` outcome a decision counts as; None: not about the caller's
    last agent."""
    if reason in REUNION_OUTCOMES:
        return str(reason)
    if (
        reason == DecisionReason.OFFER_TIMED_OUT
        and agent_id is not None
        and agent_id == call.last_agent_id
    ):
        return LAST_AGENT_TIMED_OUT
    return None
