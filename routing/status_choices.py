"""The status a person chooses: an agent for themselves, or a supervisor for them (audited with
who and why). Busy and wrap-up follow calls and cannot be chosen."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from infrastructure.errors import Invalid, NotFound, Refused
from routing import agent_status, offers, selectors, wrap_up
from routing.models import Agent, Call, Offer
from routing.states import (
    SELF_SERVICE_STATUSES,
    TALKING_STATES,
    AgentStatus,
    OfferState,
    choosable_not_ready_reasons,
)

SUPERVISOR_REASON = "set_by_supervisor"


@transaction.atomic
def change_status(
    *,
    agent_id: int,
    status: Any,
    changed_by: Any = None,
    reason: str = "",
    not_ready_reason: Any = "",
) -> Agent:
    """An agent chooses available, break or offline, or a supervisor chooses it for them
    (`changed_by` is someone else; the API checks they may). With break comes a
    `not_ready_reason` from the deployment's list (the first when none is given); the
    system's own reasons (missed_call) cannot be chosen.

    Leaving `available` while an offer rings declines it, so the caller is not kept waiting.
    The agent choosing available during wrap-up is Ready (with a wrap-up code first where the
    queue requires one: routing.wrap_up). Busy follows the call: an agent on a
    call keeps it until the call ends, except that a supervisor may release an agent shown busy
    with no live call (a lost hang-up, a closed browser).
    """
    if not isinstance(status, str) or status not in SELF_SERVICE_STATUSES:
        raise Invalid(
            "Only available, break or offline can be chosen; busy and wrap_up follow calls.",
            field="status",
        )
    not_ready_reason = check_not_ready_reason(status=status, not_ready_reason=not_ready_reason)
    open_offer = selectors.open_offers().filter(agent_id=agent_id).first()
    if open_offer is not None and status != AgentStatus.AVAILABLE:
        call = (
            Call.objects.select_for_update(of=("self",))
            .select_related("queue")
            .get(id=open_offer.call_id)
        )
        offer = Offer.objects.select_for_update().get(id=open_offer.id)
        agent = Agent.objects.select_for_update().get(id=agent_id)
        if offer.state == OfferState.OFFERED:
            offer.call = call
            offers.refuse_offer(
                offer=offer, call=call, outcome=OfferState.DECLINED, now=timezone.now()
            )
    else:
        agent = Agent.objects.select_for_update().filter(id=agent_id).first()
        if agent is None:
            raise NotFound("No such agent.", field="agent")
    on_behalf = changed_by is not None and changed_by.pk != agent.user_id
    if agent.status == AgentStatus.BUSY:
        if not on_behalf:
            raise Refused("You are on a call; your status changes when it ends.", field="status")
        in_hand = selectors.calls_in_hand(agent_id).values_list("state", flat=True).first()
        if in_hand in TALKING_STATES:
            raise Refused(
                "This agent is talking to a caller; their status follows the call.",
                field="status",
            )
        if in_hand is not None:
            # Released now, they would be offered another caller while this one is connected.
            raise Refused(
                "This agent accepted a call that is being connected; their status follows it.",
                field="status",
            )
    if on_behalf:
        reason = _supervisor_reason(reason)
    elif status == AgentStatus.AVAILABLE and agent.status == AgentStatus.WRAP_UP:
        wrap_up.check_ready(agent)
        reason = "ready"
    agent_status.set_status(
        agent=agent,
        status=status,
        reason=reason or "set_by_agent",
        changed_by=changed_by,
        not_ready_reason=not_ready_reason,
    )
    return agent


def check_not_ready_reason(*, status: str, not_ready_reason: Any) -> str:
    """The not-ready reason a person chose, checked: one of the deployment's, and only with
    break."""
    if not_ready_reason is None or not_ready_reason == "":
        return ""
    choices = choosable_not_ready_reasons()
    if not isinstance(not_ready_reason, str) or not_ready_reason not in choices:
        raise Invalid(
            f"not_ready_reason must be one of: {', '.join(choices)}.",
            field="not_ready_reason",
        )
    if status != AgentStatus.BREAK:
        raise Invalid("A not-ready reason goes with status break.", field="not_ready_reason")
    return not_ready_reason


def _supervisor_reason(typed: str) -> str:
    typed = " ".join(typed.split())
    return (f"{SUPERVISOR_REASON}: {typed}" if typed else SUPERVISOR_REASON)[:100]
