"""Who may see a customer, stated once (docs/privacy.md):

- an agent sees the customer whose call is ringing for them or is theirs (connected, held,
  transferred, wrap-up), and during their wrap-up the customer of the call that just ended;
- anyone else on the team (agent, supervisor, staff) only with a typed reason, which is logged;
- staff through the API without a reason (logged as `api`).

Changing a customer or leaving them a note needs more than a typed reason: the call (as
above), or a supervisor or staff (privacy.api `_authorise_write`).

Every read is recorded in the access log by whoever shows the customer (customers.audit).
"""

from __future__ import annotations

from typing import Any

from django.db.models import Q

from routing import policy, selectors


def _calls_about(customer_id: int) -> Q:
    return Q(customer_id=customer_id) | Q(candidates__id=customer_id)


def call_access_reason(*, user: Any, customer_id: int) -> tuple[str, int] | None:
    """Why this person may see the customer without typing a reason: ("offer" | "call", call id).
    At most four small queries."""
    agent = selectors.agent_for_user(user, fields=policy.AGENT_FIELDS_SEEING_CALLS)
    if agent is None:
        return None
    return policy.why_agent_sees_call(agent=agent, among=_calls_about(customer_id))
