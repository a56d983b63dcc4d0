"""Generic CTI, the format Zammad defined and many PBXs post (docs/telephony.md, "Generic CTI").

Here the PBX routes its own calls. Each of its events becomes a canonical call event through
`telephony.applying.accept_event` (its idempotency and ordering included), flagged as routed by
the telephony system, so the router never offers the call to anyone:

- `newCall` (in): the call rings; the agents named in `user` see the caller's card. A later
  newCall of the same call naming other agents (the PBX rings the next one) shows it to them
  too, while nobody has answered; each set of names once.
- `answer`: answered by the agent `answeringNumber` names (telephony identity, then username;
  else the one agent `user` names), who gets the full screen-pop and so becomes the caller's
  last agent.
- `hangup`: ended, its `cause` mapped to an end reason; before any answer it is abandoned.

Rapport's call record is about the customer: on an outbound call (`direction` out, the agent
dialled) the customer is the number called, so `to` is kept as the caller's side. Such a call
rings no card; it is logged against the customer.

Generic CTI carries neither an event id nor a time: an event's idempotency key is its call id and
kind (an answer's also who answered, so a second answer is a hand-over), and it happened when it
was applied: the clock is read once the call's row is locked, so the events of one call are
stamped in the order they are applied (a hang-up that waited for an answer's lock sorts after
it). Every event carries the caller, so a call whose `newCall` never arrived is recorded from
its next event. A hang-up the PBX never sends (it does not retry) is made up for by the sweep of
silent calls (`telephony.lost_calls`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify

from infrastructure.log_fields import call_fields
from routing import screens
from routing.models import Agent, Call
from telephony.applying import accept_event, lock_call
from telephony.events import EventReceipt, TelephonyEvent
from telephony.models import CallEventType
from telephony.selectors import agent_answering, agents_named, agents_rung_for

logger = logging.getLogger(__name__)

EVENT_TYPES = {
    "newCall": CallEventType.RINGING,
    "answer": CallEventType.ANSWERED,
    "hangup": CallEventType.ENDED,
}
DIRECTIONS = ("in", "out")
# Generic CTI's hang-up causes as the canonical end reasons (telephony.events.END_REASONS).
CAUSE_REASONS = {
    "normalClearing": "completed",
    "busy": "busy",
    "cancel": "abandoned",
    "noAnswer": "no-answer",
    "congestion": "failed",
    "notFound": "failed",
    # Sent on somewhere else (voicemail, another number): nobody here answered it.
    "forwarded": "no-answer",
}


@dataclass(frozen=True)
class CtiEvent:
    """One validated Generic CTI request; `payload` is what was posted, `user` always a list."""

    event: str
    call_id: str
    from_number: str = ""
    to_number: str = ""
    direction: str = "in"
    users: tuple[str, ...] = ()
    queue: str = ""
    answering_number: str = ""
    cause: str = ""
    payload: dict[str, Any] = field(default_factory=dict)

    @property
    def outbound(self) -> bool:
        return self.direction == "out"


def accept_cti_event(cti: CtiEvent) -> EventReceipt:
    """Apply one Generic CTI event; durable on return. A repeated event changes nothing."""
    with transaction.atomic():
        known = lock_call(cti.call_id)
        # Read under the call's lock: an event that waited for another's sorts after it.
        now = timezone.now()
        ringing_at, connected_at = known.ringing_at, known.connected_at
        if cti.event != "newCall" and ringing_at is None:
            accept_event(webhook_id=_webhook_id(cti, "newCall"), event=_ringing(cti, now=now))
        if cti.event == "newCall":
            event = _ringing(cti, now=now)
        elif cti.event == "answer":
            agent = _answering_agent(cti)
            event = _canonical(
                cti, now=now, agent_identity=agent.telephony_identity if agent else ""
            )
        else:
            event = _canonical(cti, now=now, reason=_end_reason(cti, answered=bool(connected_at)))
        receipt = accept_event(webhook_id=_webhook_id(cti, cti.event), event=event)
        if receipt.duplicate and cti.event == "newCall" and cti.users and not cti.outbound:
            return _ring_more(cti, event)
        if receipt.duplicate:
            return receipt
        call = Call.objects.select_related("queue").get(telephony_call_id=cti.call_id)
        if cti.event == "newCall":
            if receipt.applied and not cti.outbound:
                screens.show_ringing_call(call=call, agents=agents_named(list(cti.users)))
        else:
            screens.stop_ringing(call=call, agent_ids=agents_rung_for(call))
        return receipt


def _ring_more(cti: CtiEvent, event: TelephonyEvent) -> EventReceipt:
    """A repeated newCall naming agents whose phones did not ring yet: the PBX rings the next
    agent (the one before did not answer). While nobody has answered, the newly named see the
    card, recorded as a ringing event of theirs (so an answer closes their card too); names
    that rang already change nothing."""
    call = Call.objects.select_related("queue").get(telephony_call_id=cti.call_id)
    if call.connected_at is not None or call.ended_at is not None:
        return EventReceipt(duplicate=True)
    rung_before = set(agents_rung_for(call))
    newly = [agent for agent in agents_named(list(cti.users)) if agent.id not in rung_before]
    if not newly:
        return EventReceipt(duplicate=True)
    names = ",".join(sorted(agent.telephony_identity for agent in newly))
    receipt = accept_event(webhook_id=f"cti:{cti.call_id}:newCall:{names}"[:255], event=event)
    if not receipt.duplicate:
        screens.show_ringing_call(call=call, agents=newly)
    return receipt


def _ringing(cti: CtiEvent, *, now) -> TelephonyEvent:
    customer_side, line = (
        (cti.to_number, cti.from_number) if cti.outbound else (cti.from_number, cti.to_number)
    )
    return TelephonyEvent(
        type=CallEventType.RINGING,
        call_id=cti.call_id,
        occurred_at=now,
        from_number=customer_side,
        to_number=line,
        queue_slug=slugify(cti.queue)[:50],
        payload=cti.payload,
        routed_by_telephony=True,
    )


def _canonical(cti: CtiEvent, *, now, agent_identity: str = "", reason: str = "") -> TelephonyEvent:
    return TelephonyEvent(
        type=EVENT_TYPES[cti.event],
        call_id=cti.call_id,
        occurred_at=now,
        agent_identity=agent_identity,
        reason=reason,
        payload=cti.payload,
        routed_by_telephony=True,
    )


def _webhook_id(cti: CtiEvent, event: str) -> str:
    if event == "answer":
        return f"cti:{cti.call_id}:answer:{cti.answering_number or ','.join(cti.users)}"[:255]
    return f"cti:{cti.call_id}:{event}"


def _answering_agent(cti: CtiEvent) -> Agent | None:
    agent = agent_answering(cti.answering_number)
    if agent is None:
        named = agents_named(list(cti.users))
        agent = named[0] if len(named) == 1 else None
    if agent is None:
        logger.warning(
            "Generic CTI: call %r answered by nobody Rapport knows (answeringNumber %r, user %r)",
            cti.call_id,
            cti.answering_number,
            list(cti.users),
            extra=call_fields(cti.call_id),
        )
    return agent


def _end_reason(cti: CtiEvent, *, answered: bool) -> str:
    reason = CAUSE_REASONS.get(cti.cause or "normalClearing", "completed")
    # A PBX may report a caller who hung up while it rang as a normal clearing; nobody answered,
    # so the caller abandoned the call (the contract's rule).
    if reason == "completed" and not answered:
        return "abandoned"
    return reason
