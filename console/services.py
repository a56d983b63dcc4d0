"""What the agent console does that spans routing and telephony: taking an offer (and telling
the phone system whom to connect), drawing the screen on connect, saying who is on a shared line.

Every path here that puts a customer on the agent's screen records it in the access log."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models import Q

from customers.audit import record_context_access
from customers.models import AccessReason, Customer
from infrastructure.errors import Forbidden, Invalid, NotFound
from routing import messages, offers, policy, selectors, transfers
from routing.models import Agent, Call, Offer, Queue
from routing.states import TALKING_STATES
from telephony import connect, instructions


def accept_offer(*, offer_id: int, agent_id: int) -> Offer:
    """The agent takes the call; once that has committed the telephony system is told to connect
    them. Asked for after the accept's own commit, so no failing screen message can skip it; a
    push the broker does not take is sent again by the router's sweeper."""
    offer = offers.accept_offer(offer_id=offer_id, agent_id=agent_id)
    if offer.handoff_from_id is not None:
        instructions.request_transfer(offer.call, getattr(offer, "decision", None))
    else:
        connect.request_connect(offer.call, getattr(offer, "decision", None))
    return offer


def transfer(*, agent_id: int, message: dict[str, Any]) -> Offer:
    """The agent's `transfer` message (docs/sockets.md): their connected call offered to a
    colleague with a one-line hand-off."""
    call_id = message.get("call_id")
    if not isinstance(call_id, str) or not call_id:
        raise Invalid("call_id must be the call's id.", field="call_id")
    to_agent, to_queue = message.get("to_agent"), message.get("to_queue")
    if to_queue is not None and to_agent is None:
        if isinstance(to_queue, bool) or not isinstance(to_queue, int | str) or not to_queue:
            raise Invalid("to_queue must be a queue's slug or id.", field="to_queue")
        return transfers.request_transfer(
            agent_id=agent_id,
            telephony_call_id=call_id,
            to_queue=to_queue,
            note=message.get("note"),
        )
    if isinstance(to_agent, bool) or not isinstance(to_agent, int):
        raise Invalid("to_agent must be a colleague's id (or give to_queue).", field="to_agent")
    return transfers.request_transfer(
        agent_id=agent_id, telephony_call_id=call_id, to_agent_id=to_agent, note=message.get("note")
    )


def control_call(*, agent_id: int, message: dict[str, Any]) -> None:
    """The agent's `hangup`, `hold` or `resume` message: the phone system is told, where it can
    be (telephony.instructions)."""
    call_id = message.get("call_id")
    if not isinstance(call_id, str) or not call_id:
        raise Invalid("call_id must be the call's id.", field="call_id")
    instructions.request_call_control(
        agent_id=agent_id, telephony_call_id=call_id, action=message["type"]
    )


def transfer_options(*, agent: Agent, telephony_call_id: str) -> dict[str, Any]:
    """For the agent on `telephony_call_id`: what its phone system can be told (hang-up, hold,
    how a transfer is made) and the colleagues they could hand it to."""
    call = Call.objects.filter(telephony_call_id=telephony_call_id).first()
    if call is None or call.agent_id != agent.id or call.state not in TALKING_STATES:
        raise Forbidden("This call is not connected with you.", field="call_id")
    return {
        "call_id": call.telephony_call_id,
        "controls": instructions.controls_for(call),
        "colleagues": selectors.transfer_colleagues(agent_id=agent.id),
        "queues": list(Queue.objects.order_by("name").values("slug", "name")),
    }


def agent_state_on_connect(*, agent_id: int, user: Any) -> dict[str, Any]:
    """The first message on the agent's socket. Showing the caller of their ringing offer or
    current call again is a read of the customer's context, audited like the first screen-pop;
    so is the name of a caller held for them (the waiting line)."""
    state = messages.agent_state_message(agent_id)
    for reason, payload in (("offer", state["offer"]), ("call", state["call"])):
        if not payload:
            continue
        caller = payload["caller"]
        customer_ids = [candidate["id"] for candidate in caller["candidates"]]
        if caller["customer"]:
            customer_ids.append(caller["customer"]["id"])
        if not customer_ids:
            continue
        call_pk = (
            Call.objects.filter(telephony_call_id=payload["call_id"])
            .values_list("id", flat=True)
            .first()
        )
        record_context_access(customer_ids=customer_ids, user=user, reason=reason, call_id=call_pk)
    named = [line["call_id"] for line in state["waiting_callers"] if line["caller_name"]]
    if named:
        for call_pk, customer_id in Call.objects.filter(telephony_call_id__in=named).values_list(
            "id", "customer_id"
        ):
            record_context_access(
                customer_ids=[customer_id], user=user, reason=AccessReason.WAITING, call_id=call_pk
            )
    return state


@transaction.atomic
def set_call_customer(*, agent: Agent, telephony_call_id: str, customer_id: int) -> Call:
    """The agent ringing with or talking to `call`, or wrapping it up after it ended with them,
    says which customer is on the line. Any other call, however recently theirs, is not: saying
    who was on it would show that customer's card and rewrite whose last agent they are.

    Only a customer who shares the caller's number (or was listed as a candidate) can be chosen,
    so a wrong click cannot attach a stranger's history to the call.
    """
    call = Call.objects.select_for_update().filter(telephony_call_id=telephony_call_id).first()
    if call is None:
        raise NotFound("No such call.", field="call_id")
    # The caller's card is the agent's now (routing.policy), and the call did not go on with a
    # colleague (a call they handed on is only wrapped up by them).
    seen = policy.why_agent_sees_call(agent=agent, among=Q(id=call.id))
    ringing_for_agent = seen is not None and seen[0] == AccessReason.OFFER
    if seen is None or not (ringing_for_agent or call.agent_id == agent.id):
        raise Forbidden("This call is not ringing for you or with you.", field="call_id")
    on_this_line = Q(id__in=call.candidates.values("id"))
    if call.from_e164:
        on_this_line |= Q(phones__number=call.from_e164)
    customer = (
        Customer.objects.filter(on_this_line, id=customer_id, erased_at__isnull=True)
        .distinct()
        .first()
    )
    if customer is None:
        raise Invalid("This customer does not share the caller's number.", field="customer_id")
    call.customer = customer
    call.save(update_fields=["customer"])
    # The card now shows this customer's history: that is a read like any screen-pop.
    record_context_access(
        customer_ids=[customer.id],
        user=agent.user,
        reason=seen[0],
        call_id=call.id,
    )
    return call
