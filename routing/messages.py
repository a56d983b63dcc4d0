"""What the agent's screen is sent (docs/sockets.md): every payload in one place, including the
caller card that travels inside an offer so the screen renders it at once."""

from __future__ import annotations

from typing import Any

from django.utils import timezone

from customers.models import Customer
from customers.selectors import customer_context, customers_with_recorders, history_hidden
from routing import selectors
from routing.models import Agent, Call, Offer
from routing.states import AgentStatus, CallState, status_label


def caller_context(
    *,
    from_e164: str,
    customer_ids: list[int],
    identity_verified: bool = False,
    queue_id: int | None = None,
) -> dict[str, Any]:
    """The `caller` object of an offer. At most three queries, whatever the history: one for
    the customer (or the candidates), one for notes and their count, one for the last agent
    within `queue_id`'s look-back.

    Reading is not recording: whoever shows the card records the access (customers.audit).
    """
    caller: dict[str, Any] = {
        "kind": "unknown",
        "number": from_e164,
        "customer": None,
        "candidates": [],
    }
    if len(customer_ids) > 1:
        candidates = list(
            Customer.objects.filter(id__in=customer_ids, erased_at__isnull=True)
            .order_by("name", "id")
            .values("id", "name")
        )
        if len(candidates) > 1:
            caller.update(kind="shared", candidates=candidates)
            return caller
        customer_ids = [candidate["id"] for candidate in candidates]
    if len(customer_ids) == 1:
        customer = customers_with_recorders().filter(id=customer_ids[0]).first()
        if customer is not None:
            caller.update(
                kind="known",
                customer=customer_context(
                    customer,
                    identity_verified=identity_verified,
                    last_agent=last_agent_shown(customer, queue_id=queue_id),
                ),
            )
    return caller


def last_agent_shown(customer: Customer, *, queue_id: int | None) -> dict[str, Any] | None:
    """The customer's last agent as a person is shown it: none, and no query, when consent hides
    their history."""
    if history_hidden(customer):
        return None
    return selectors.last_agent(customer_id=customer.id, queue_id=queue_id, now=timezone.now())


def customer_ids_on_card(call: Call) -> list[int]:
    """The customer the call is from, or while nobody has said who is calling, every customer
    sharing the number."""
    if call.customer_id is not None:
        return [call.customer_id]
    return list(call.candidates.values_list("id", flat=True))


def caller_for_call(call: Call, *, customer_ids: list[int] | None = None) -> dict[str, Any]:
    """The caller of `call`, with the last agent the router chooses for its queue."""
    return caller_context(
        from_e164=call.from_e164 or call.from_number,
        customer_ids=customer_ids_on_card(call) if customer_ids is None else customer_ids,
        identity_verified=call.identity_verified,
        queue_id=call.queue_id,
    )


def offer_message(offer: Offer, *, reason: str, caller: dict[str, Any]) -> dict[str, Any]:
    call = offer.call
    queue = call.queue
    return {
        "type": "offer",
        "offer_id": offer.id,
        "call_id": call.telephony_call_id,
        "queue": {"slug": queue.slug, "name": queue.name} if queue else None,
        "offered_at": offer.offered_at.isoformat(),
        "expires_at": offer.expires_at.isoformat(),
        "timeout_seconds": queue.offer_timeout_seconds if queue else None,
        "reason": reason,
        "caller": caller,
    }


def call_message(call: Call, *, caller: dict[str, Any], state: str | None = None) -> dict[str, Any]:
    return {
        "type": "call",
        "call_id": call.telephony_call_id,
        "state": state or call.state,
        "connected_at": call.connected_at.isoformat() if call.connected_at else None,
        "customer_id": call.customer_id,
        "caller": caller,
    }


def status_message(agent: Agent, *, reason: str) -> dict[str, Any]:
    return {
        "type": "status",
        "status": agent.status,
        "status_changed_at": agent.status_changed_at.isoformat(),
        "reason": reason,
        "not_ready_reason": agent.not_ready_reason,
        "status_label": status_label(agent.status, agent.not_ready_reason),
    }


def agent_state_message(agent_id: int) -> dict[str, Any]:
    """The first message on an agent's socket: everything the screen needs to draw itself,
    including the offer ringing now and the current call, so a reconnect heals."""
    agent = Agent.objects.prefetch_related("queues").get(id=agent_id)
    offer = (
        selectors.open_offers()
        .filter(agent=agent)
        .select_related("call__queue", "decision")
        .first()
    )
    offer_payload = None
    if offer is not None:
        reason = offer.decision.reason if hasattr(offer, "decision") else ""
        offer_payload = offer_message(offer, reason=reason, caller=caller_for_call(offer.call))
    call = selectors.agent_current_call(agent)
    call_payload = None
    if call is not None:
        state = CallState.WRAP_UP if agent.status == AgentStatus.WRAP_UP else None
        call_payload = call_message(call, caller=caller_for_call(call), state=state)
    return {
        "type": "state",
        "agent": {
            "id": agent.id,
            "display_name": agent.display_name,
            "status": agent.status,
            "status_changed_at": agent.status_changed_at.isoformat(),
            "not_ready_reason": agent.not_ready_reason,
            "status_label": status_label(agent.status, agent.not_ready_reason),
            "queues": [queue.slug for queue in agent.queues.all()],
        },
        "offer": offer_payload,
        "call": call_payload,
    }
