"""Transfers from the console: the agent on a call hands it to a colleague with a one-line
note (docs/console.md, "Transfer").

The colleague is offered the call like any offer, for the queue's offer time-out, and their card
shows the note first. The call stays with the first agent while it rings and after the colleague
accepts, until the phone system reports the transfer (`call.transferred`, or an answer by the
colleague: routing.router `call_transferred`), which starts the first agent's wrap-up and puts
the colleague on the call. A hand-off declined, unanswered or withdrawn leaves the caller with the
first agent, who is told (routing.offers `refuse_offer`). A colleague who accepted is busy, so
nothing else is offered to them, until the transfer is done or the call ends.

Lock order, as everywhere: the call, then the offer, then the agents."""

from __future__ import annotations

import contextlib
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from customers.audit import record_context_access
from customers.models import AccessReason
from customers.services import CustomerErased, add_note
from infrastructure import broadcast
from infrastructure.errors import Forbidden, Invalid, NotFound, Refused
from routing import decisions, messages, roles, selectors
from routing.models import (
    DEFAULT_OFFER_TIMEOUT_SECONDS,
    Agent,
    Call,
    DecisionReason,
    Offer,
    Queue,
)
from routing.states import TALKING_STATES, AgentStatus, OfferState

# One line: what the colleague reads before they pick up.
NOTE_MAX_LENGTH = 200
NOT_YOUR_CALL = "This call is not connected with you."


def checked_note(note: object) -> str:
    if not isinstance(note, str) or not note.strip():
        raise Invalid("Write a one-line hand-off for your colleague.", field="note")
    note = note.strip()
    if len(note) > NOTE_MAX_LENGTH or "\n" in note or "\r" in note or "\x00" in note:
        raise Invalid(f"One line of at most {NOTE_MAX_LENGTH} characters.", field="note")
    return note


def request_transfer(
    *,
    agent_id: int,
    telephony_call_id: str,
    note: object,
    to_agent_id: int | None = None,
    to_queue: str | int | None = None,
) -> Offer:
    """`agent_id` offers their connected call to the colleague `to_agent_id`, who must be free
    (available, nothing ringing, no call in hand), or to `to_queue`'s next agent (its slug or
    id: the free agent of that queue idle longest, as the router would choose). Nothing changes
    when anything is wrong: the refusal names the field."""
    note = checked_note(note)
    if to_agent_id == agent_id:
        raise Invalid("Choose a colleague, not yourself.", field="to_agent")
    queue = None if to_queue is None else _queue_named(to_queue)
    with transaction.atomic():
        call = (
            Call.objects.select_for_update(of=("self",))
            .select_related("queue", "customer")
            .filter(telephony_call_id=telephony_call_id)
            .first()
        )
        if call is None or call.agent_id != agent_id or call.state not in TALKING_STATES:
            raise Forbidden(NOT_YOUR_CALL, field="call_id")
        if selectors.open_offers().filter(call=call).exists():
            raise Refused("A transfer of this call is ringing already.", field="call_id")
        if queue is not None:
            colleague = selectors.longest_idle_agent_for_update(
                queue_id=queue.id, excluded_agent_ids=[agent_id]
            )
            if colleague is None or selectors.calls_in_hand(colleague.id).exists():
                raise Refused(f"Nobody in {queue.name} is free now.", field="to_queue")
        else:
            colleague = _free_colleague_for_update(to_agent_id)
        return _offer_to_colleague(call, colleague, from_agent_id=agent_id, note=note)


def _queue_named(to_queue: str | int) -> Queue:
    by_id = isinstance(to_queue, int) and not isinstance(to_queue, bool)
    queue = Queue.objects.filter(**({"id": to_queue} if by_id else {"slug": str(to_queue)})).first()
    if queue is None:
        raise NotFound("No such queue.", field="to_queue")
    return queue


def _free_colleague_for_update(to_agent_id: int | None) -> Agent:
    colleague = (
        Agent.objects.select_for_update(of=("self",))
        .select_related("user")
        .filter(roles.takes_calls(), id=to_agent_id)
        .first()
    )
    if colleague is None:
        raise NotFound("No such colleague.", field="to_agent")
    if (
        colleague.status != AgentStatus.AVAILABLE
        or selectors.open_offers().filter(agent=colleague).exists()
        or selectors.calls_in_hand(colleague.id).exists()
    ):
        raise Refused(f"{colleague.display_name} is not free to take a call.", field="to_agent")
    return colleague


def _offer_to_colleague(call: Call, colleague: Agent, *, from_agent_id: int, note: str) -> Offer:
    now = timezone.now()
    timeout = call.queue.offer_timeout_seconds if call.queue else DEFAULT_OFFER_TIMEOUT_SECONDS
    try:
        with transaction.atomic():
            offer = Offer.objects.create(
                call=call,
                agent=colleague,
                state=OfferState.OFFERED,
                offered_at=now,
                expires_at=now + timedelta(seconds=timeout),
                handoff_from_id=from_agent_id,
                handoff_note=note,
            )
    except IntegrityError:
        # A router's offer to them committed after the check: the constraint refused this one.
        raise Refused(
            f"{colleague.display_name} is not free to take a call.", field="to_agent"
        ) from None
    offer.handoff_from = Agent.objects.only("id", "display_name").get(id=from_agent_id)
    decisions.record_decision(
        call=call,
        reason=DecisionReason.TRANSFER_OFFERED,
        agent_id=colleague.id,
        offer=offer,
        now=now,
        detail={"from_agent": from_agent_id},
    )
    customer_ids = messages.customer_ids_on_card(call)
    if customer_ids:
        # The colleague's offer card is a screen-pop like any other.
        record_context_access(
            customer_ids=customer_ids,
            user=colleague.user,
            reason=AccessReason.OFFER,
            call_id=call.id,
        )
    caller = messages.caller_for_call(call, customer_ids=customer_ids)
    broadcast.send_to_agent(
        colleague.id,
        messages.offer_message(offer, reason=DecisionReason.TRANSFER_OFFERED, caller=caller),
    )
    broadcast.send_to_agent(from_agent_id, messages.transfer_message(offer, state=offer.state))
    broadcast.notify_supervisors(queue_id=call.queue_id, agent_id=colleague.id)
    return offer


def save_handoff_note(offer: Offer, *, call: Call) -> None:
    """The accepted hand-off goes into the customer's history as a note of the call, written by
    the agent who handed it over. A caller nobody has named yet has no history to keep it in:
    their note travelled in the offer only."""
    if call.customer_id is None or offer.handoff_from_id is None:
        return
    author = Agent.objects.select_related("user").get(id=offer.handoff_from_id)
    colleague = Agent.objects.only("display_name").get(id=offer.agent_id)
    # An erased customer keeps no history: the hand-off stays in the offer only.
    with contextlib.suppress(CustomerErased):
        add_note(
            customer=call.customer,
            author=author.user,
            call_id=call.id,
            text=(
                f"Hand-off from {author.display_name} to {colleague.display_name}:"
                f" {offer.handoff_note}"
            ),
        )
