"""Recording who read a customer's context: one append-only row per customer per read."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from customers.card_numbers import mask_card_numbers
from customers.models import AccessReason, ContextAccess
from infrastructure.database import rows


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
    ringing on several phones), in one insert: user by user, customer by customer, in the order
    given. One statement whatever the numbers, written as SQL and prepared, as every offer runs
    it (see infrastructure.database.rows). A card number typed into the reason is masked."""
    if reason not in AccessReason.values:
        raise ValueError(f"unknown access reason {reason!r}")
    customer_ids = list(dict.fromkeys(customer_ids))
    users = list(users)
    if not customer_ids or not users:
        return []
    with rows.prepared_cursor() as cursor:
        cursor.execute(
            _INSERT_ACCESSES_SQL,
            [
                reason,
                mask_card_numbers(reason_text)[:300],
                call_id,
                [user.pk for user in users],
                [user.get_username() for user in users],
                customer_ids,
            ],
        )
        inserted = cursor.fetchall()
    return [rows.instance(ContextAccess, values) for values in inserted]


_INSERT_ACCESSES_SQL = f"""
    INSERT INTO {ContextAccess._meta.db_table}
        (customer_id, user_id, username, reason, reason_text, call_id)
    SELECT customer.id, person.id, person.username, %s::text, %s::text, %s::bigint
    FROM unnest(%s::bigint[], %s::text[]) WITH ORDINALITY AS person(id, username, n)
    CROSS JOIN unnest(%s::bigint[]) WITH ORDINALITY AS customer(id, n)
    ORDER BY person.n, customer.n
    RETURNING {rows.columns(ContextAccess, ContextAccess._meta.db_table)}
"""


def context_access_insert_sql(*, call: str, when: str) -> str:
    """`record_context_access`'s insert (reason text empty) as a statement another one carries
    in a `WITH`, for a look recorded in the statement that gives it: the router's offer, which
    is a screen-pop, records it without a round trip of its own. `call` is the SQL of the call's
    primary key; the rows go in only where `when` (SQL) holds. Parameters: those of
    `context_access_params`."""
    return f"""
        INSERT INTO {ContextAccess._meta.db_table}
            (customer_id, user_id, username, reason, reason_text, call_id)
        SELECT customer.id, %(access_user)s::bigint, %(access_username)s::text,
            %(access_reason)s::text, '', {call}
        FROM unnest(%(access_customers)s::bigint[]) WITH ORDINALITY AS customer(id, n)
        WHERE {when}
        ORDER BY customer.n
    """


def context_access_params(*, customer_ids: Iterable[int], user: Any, reason: str) -> dict[str, Any]:
    """The parameters of `context_access_insert_sql`: one row per customer shown to `user`."""
    if reason not in AccessReason.values:
        raise ValueError(f"unknown access reason {reason!r}")
    return {
        "access_customers": list(dict.fromkeys(customer_ids)),
        "access_user": user.pk,
        "access_username": user.get_username(),
        "access_reason": reason,
    }


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
