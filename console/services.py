"""Changes the agent console makes on its own: saying who is on a shared line."""

from __future__ import annotations

from django.db import transaction
from django.db.models import Q

from customers.audit import record_context_access
from customers.models import AccessReason, Customer
from routing.models import Agent, Call, OfferState


class CallNotFound(Exception):
    pass


class CallNotHeldByAgent(Exception):
    pass


class CustomerNotOnThisNumber(Exception):
    pass


@transaction.atomic
def set_call_customer(*, agent: Agent, telephony_call_id: str, customer_id: int) -> Call:
    """The agent ringing with or talking to `call` says which customer is on the line.

    Only a customer who shares the caller's number (or was listed as a candidate) can be chosen,
    so a wrong click cannot attach a stranger's history to the call.
    """
    call = Call.objects.select_for_update().filter(telephony_call_id=telephony_call_id).first()
    if call is None:
        raise CallNotFound(telephony_call_id)
    ringing_for_agent = call.offers.filter(agent=agent, state=OfferState.OFFERED).exists()
    if not (ringing_for_agent or call.agent_id == agent.id):
        raise CallNotHeldByAgent(telephony_call_id)
    on_this_line = Q(id__in=call.candidates.values("id"))
    if call.from_e164:
        on_this_line |= Q(phones__number=call.from_e164)
    customer = (
        Customer.objects.filter(on_this_line, id=customer_id, erased_at__isnull=True)
        .distinct()
        .first()
    )
    if customer is None:
        raise CustomerNotOnThisNumber(customer_id)
    call.customer = customer
    call.save(update_fields=["customer"])
    # The card now shows this customer's history: that is a read like any screen-pop.
    record_context_access(
        customer_ids=[customer.id],
        user=agent.user,
        reason=AccessReason.OFFER if ringing_for_agent else AccessReason.CALL,
        call_id=call.id,
    )
    return call
