"""Recording who read a customer's context: one append-only row per customer per read."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from customers.models import AccessReason, ContextAccess


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
