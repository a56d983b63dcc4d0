"""What an agent's screen shows of a call besides offers: the caller held for them (the waiting
line), the call they are on, a call ringing on their phone. Putting a caller on a screen is a
read of the customer's context, recorded in the access log with the message that shows it."""

from __future__ import annotations

import logging

from customers.audit import record_context_access, record_context_access_by_users
from customers.models import AccessReason
from infrastructure import broadcast
from infrastructure.log_fields import call_fields
from routing import messages
from routing.models import Agent, Call

logger = logging.getLogger(__name__)


def show_caller_waiting(*, call: Call, agent_id: int) -> None:
    """`call` (with its customer loaded) is held for its busy last agent `agent_id`: a quiet
    line on their screen, not an offer, so they can wrap up. A name on it is a look at the
    customer, recorded like the screen-pop."""
    message = messages.caller_waiting_message(call)
    if message["caller_name"] is not None:
        user = Agent.objects.select_related("user").get(id=agent_id).user
        record_context_access(
            customer_ids=[call.customer_id],
            user=user,
            reason=AccessReason.WAITING,
            call_id=call.id,
        )
    broadcast.send_to_agent(agent_id, message)


def stop_waiting_for_last_agent(call: Call, *, why: str) -> None:
    """`call` is no longer held for its last agent (`why`: offered, queue, answered, ended):
    the waiting line leaves their screen. The caller saves the call."""
    if call.last_agent_wait_until is None:
        return
    call.last_agent_wait_until = None
    if call.last_agent_id is not None:
        broadcast.send_to_agent(
            call.last_agent_id, messages.caller_waiting_ended_message(call, why=why)
        )


def show_call(
    *,
    call: Call,
    agent: Agent,
    state: str | None = None,
    handed_over: bool = False,
    customer_ids: list[int] | None = None,
) -> None:
    """Put `call` and its caller on the screen of `agent`: a read of the caller's context,
    recorded like the screen-pop of an offer. Only the agent connected to the call, one it was
    offered to, or the agent who just `handed_over` the call to another is shown its caller.
    `customer_ids`: `messages.customer_ids_on_card`, when the caller read it already."""
    theirs = handed_over or agent.id == call.agent_id
    if not theirs and not call.offers.filter(agent=agent).exists():
        logger.warning(
            "call %r: not shown to agent %s, not theirs",
            call.telephony_call_id,
            agent,
            extra=call_fields(call.telephony_call_id, agent.id),
        )
        return
    if customer_ids is None:
        customer_ids = messages.customer_ids_on_card(call)
    caller = messages.caller_for_call(call, customer_ids=customer_ids)
    if customer_ids:
        record_context_access(
            customer_ids=customer_ids, user=agent.user, reason=AccessReason.CALL, call_id=call.id
        )
    broadcast.send_to_agent(agent.id, messages.call_message(call, caller=caller, state=state))


def show_ringing_call(*, call: Call, agents: list[Agent]) -> None:
    """`call` rings on the phones of `agents`, chosen by the telephony system, which routes it
    itself: each sees the caller's card (as consent allows), recorded like an offer's
    screen-pop. No offer is made; the router never routes such a call."""
    if not agents:
        return
    customer_ids = messages.customer_ids_on_card(call)
    caller = messages.caller_for_call(call, customer_ids=customer_ids)
    if customer_ids:
        record_context_access_by_users(
            customer_ids=customer_ids,
            users=[agent.user for agent in agents],
            reason=AccessReason.OFFER,
            call_id=call.id,
        )
    message = messages.ringing_message(call, caller=caller)
    for agent in agents:
        broadcast.send_to_agent(agent.id, message)


def stop_ringing(*, call: Call, agent_ids: list[int]) -> None:
    """`call` no longer rings for `agent_ids` (answered, or the caller hung up): their cards go."""
    message = messages.ringing_ended_message(call)
    for agent_id in agent_ids:
        broadcast.send_to_agent(agent_id, message)
