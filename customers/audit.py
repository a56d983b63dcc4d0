"""Recording who read a customer's context: one append-only row per customer per read."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from customers.models import AccessReason, ContextAccess
from routing.models import Agent


def record_context_access(
    *,
    customer_ids: Iterable[int],
    user: Any,
    reason: str,
    reason_text: str = "",
    call_id: int | None = None,
) -> list[ContextAccess]:
    """One row per customer shown to `user`, in one insert. `call_id` is the Call's primary key."""
    if reason not in AccessReason.values:
        raise ValueError(f"unknown access reason {reason!r}")
    rows = [
        ContextAccess(
            customer_id=customer_id,
            user_id=user.pk,
            username=user.get_username(),
            reason=reason,
            reason_text=reason_text[:300],
            call_id=call_id,
        )
        for customer_id in dict.fromkeys(customer_ids)
    ]
    return ContextAccess.objects.bulk_create(rows)


def record_offer_access(
    *, customer_ids: Iterable[int], agent_id: int, call_id: int
) -> list[ContextAccess]:
    """The screen-pop of an offer: call it once per offer, with the customer ids whose context
    (or, for a shared number, whose names) the card shows. One select and one insert; nothing
    for an unknown caller. `call_id` is the Call's primary key, not the telephony system's id.
    """
    customer_ids = list(dict.fromkeys(customer_ids))
    if not customer_ids:
        return []
    agent = Agent.objects.select_related("user").get(id=agent_id)
    return record_context_access(
        customer_ids=customer_ids, user=agent.user, reason=AccessReason.OFFER, call_id=call_id
    )
