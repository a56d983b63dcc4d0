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
    return record_context_access_by_users(
        customer_ids=customer_ids,
        users=[user],
        reason=reason,
        reason_text=reason_text,
        call_id=call_id,
    )


def record_context_access_by_users(
    *,
    customer_ids: Iterable[int],
    users: Iterable[Any],
    reason: str,
    reason_text: str = "",
    call_id: int | None = None,
) -> list[ContextAccess]:
    """One row per customer per user, for a context shown to several people at once (a call
    ringing on several phones), in one insert."""
    if reason not in AccessReason.values:
        raise ValueError(f"unknown access reason {reason!r}")
    customer_ids = list(dict.fromkeys(customer_ids))
    return ContextAccess.objects.bulk_create(
        [
            ContextAccess(
                customer_id=customer_id,
                user_id=user.pk,
                username=user.get_username(),
                reason=reason,
                reason_text=reason_text[:300],
                call_id=call_id,
            )
            for user in users
            for customer_id in customer_ids
        ]
    )


def record_first_sight(
    *, shown: Iterable[tuple[int, int]], user: Any, reason: str
) -> list[ContextAccess]:
    """One row per (customer, call) the first time `user` is shown it for `reason`: a screen
    that redraws every moment (the supervisor wall) records each caller once per call. Two
    queries."""
    shown = list(dict.fromkeys(shown))
    if not shown:
        return []
    seen = set(
        ContextAccess.objects.filter(
            user_id=user.pk, reason=reason, call_id__in=[call_id for _, call_id in shown]
        ).values_list("customer_id", "call_id")
    )
    return ContextAccess.objects.bulk_create(
        [
            ContextAccess(
                customer_id=customer_id,
                user_id=user.pk,
                username=user.get_username(),
                reason=reason,
                call_id=call_id,
            )
            for customer_id, call_id in shown
            if (customer_id, call_id) not in seen
        ]
    )
