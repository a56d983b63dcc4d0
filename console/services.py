"""Changes the agent console makes on its own: saying who is on a shared line."""

from __future__ import annotations

from django.db import transaction
from django.db.models import Q

from customers.models import Customer
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
    holds_call = (
        call.agent_id == agent.id
        or call.offers.filter(agent=agent, state=OfferState.OFFERED).exists()
    )
    if not holds_call:
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
    return call
