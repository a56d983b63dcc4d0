"""The route hint: whom a PBX that routes its own calls should ring first for a caller, and for
how long, by the router's own rule (routing.policy.last_agent_step), then whom of the queue, by
the router's queue step (routing.selectors.queue_agent_identities). It names no customer."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from customers.models import Customer
from customers.phone_numbers import normalise_phone_number
from customers.selectors import customer_ids_for_number
from routing import policy
from routing.models import Queue
from routing.selectors import agent_with_standing, last_agent, queue_agent_identities

# The most agents `then` names: a PBX rings them one after another, a few are plenty.
THEN_AT_MOST = 10


def route_hint(*, from_number: str, queue: Queue, now: datetime) -> dict[str, Any]:
    """Whom a PBX that routes its own calls should ring for a caller from `from_number`: first
    `agent` for `wait_seconds` (the router's last-agent step), `then` the queue's agents the
    router's queue step would offer the call to, in its order, each for `ring_seconds`."""
    first, last_agent_id = _first_agent(from_number=from_number, queue=queue, now=now)
    excluded = [] if last_agent_id is None else [last_agent_id]
    return {
        **first,
        "then": queue_agent_identities(
            queue_id=queue.id, excluded_agent_ids=excluded, limit=THEN_AT_MOST
        ),
        "ring_seconds": queue.offer_timeout_seconds,
    }


def _first_agent(
    *, from_number: str, queue: Queue, now: datetime
) -> tuple[dict[str, Any], int | None]:
    """The router's own last-agent step (routing.policy.last_agent_step) at its first look at a
    call. Offered: the last agent, rung for as long as an offer would ring; held for: the last
    agent, for as long as the caller may be held for them; else nobody, and the router's reason
    why. Names no customer. With it, the last agent's id, if the caller has one."""
    nobody = {"agent": None, "status": None, "wait_seconds": 0}
    customer_ids = customer_ids_for_number(normalise_phone_number(from_number) or "")
    if not customer_ids:
        return {**nobody, "reason": "unknown_caller"}, None
    if len(customer_ids) > 1:
        return {**nobody, "reason": "shared_number"}, None
    customer = Customer.objects.only(
        "pace", "pace_source", "hold_tolerance", "hold_tolerance_source"
    ).get(id=customer_ids[0])
    last = last_agent(customer_id=customer.id, queue_id=queue.id, now=now)
    if last is None:
        return {**nobody, "reason": "no_last_agent"}, None
    agent, standing = agent_with_standing(agent_id=last["id"], queue_id=queue.id)
    step = policy.last_agent_step(
        standing,
        hold=policy.hold_rule(customer=customer, queue=queue),
        first=True,
        wait_until=None,
        now=now,
    )
    if step.action == policy.OFFER:
        wait = queue.offer_timeout_seconds
    elif step.action == policy.HOLD:
        wait = step.wait_seconds
    else:
        return {**nobody, "status": standing.status, "reason": str(step.reason)}, agent.id
    return {
        "agent": agent.telephony_identity,
        "status": standing.status,
        "wait_seconds": wait,
        "reason": str(step.reason),
    }, agent.id
