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

from django.db.models import Q, Subquery

from routing import selectors as routing_selectors
from routing.models import Agent, Call, Offer
from routing.states import FINAL_STATES, AgentStatus, CallState, OfferState

_SEEN_DURING_CALL = (CallState.CONNECTED, CallState.HELD, CallState.TRANSFERRED, CallState.WRAP_UP)


def _calls_about(customer_id: int) -> Q:
    return Q(customer_id=customer_id) | Q(candidates__id=customer_id)


def call_access_reason(*, user: Any, customer_id: int) -> tuple[str, int] | None:
    """Why this person may see the customer without typing a reason: ("offer" | "call", call id).
    At most four small queries."""
    agent = Agent.objects.filter(user_id=user.id).only("id", "status").first()
    if agent is None:
        return None
    offered = (
        Offer.objects.filter(
            agent_id=agent.id,
            state__in=[OfferState.OFFERED, OfferState.ACCEPTED],
        )
        .exclude(call__state__in=FINAL_STATES)
        .filter(Q(call__customer_id=customer_id) | Q(call__candidates__id=customer_id))
        .values_list("call_id", "state")
        .first()
    )
    if offered is not None:
        call_id, state = offered
        return ("offer" if state == OfferState.OFFERED else "call", call_id)
    talking = (
        Call.objects.filter(
            _calls_about(customer_id), agent_id=agent.id, state__in=_SEEN_DURING_CALL
        )
        .values_list("id", flat=True)
        .first()
    )
    if talking is not None:
        return ("call", talking)
    if agent.status == AgentStatus.WRAP_UP:
        # The telephony side may end the call before the agent has finished their wrap-up.
        latest_ended = (
            routing_selectors.agents_calls_latest_first(agent.id)
            .filter(state__in=FINAL_STATES)
            .values("id")[:1]
        )
        wrapping_up = (
            Call.objects.filter(_calls_about(customer_id), id=Subquery(latest_ended))
            .values_list("id", flat=True)
            .first()
        )
        if wrapping_up is not None:
            return ("call", wrapping_up)
    return None
