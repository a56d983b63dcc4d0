"""What a supervisor can do from the dashboard; each action leaves a record of who did it and why.

A status change is an `AgentStatusChange` row with `changed_by`; a moved call is a
`RoutingDecision` with reason `moved_by_supervisor` naming the supervisor and both queues.
Both go through the router's own writes, so the agent's screen and every supervisor screen hear
of it after commit.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from routing import services as routing_services
from routing import telephony_services
from routing.broadcast import notify_supervisors
from routing.call_states import TALKING_STATES, CallState
from routing.models import Agent, AgentStatus, Call, DecisionReason, Queue
from routing.services import SELF_SERVICE_STATUSES, RoutingRefused

SUPERVISOR_REASON = "set_by_supervisor"
MOVABLE_STATES = frozenset({CallState.QUEUED, CallState.OFFERED})


def _audit_reason(reason: str) -> str:
    reason = " ".join(reason.split())
    text = f"{SUPERVISOR_REASON}: {reason}" if reason else SUPERVISOR_REASON
    return text[:100]


def set_agent_status(*, agent_id: int, status: str, changed_by: Any, reason: str = "") -> Agent:
    """Set an agent available, on break or offline on their behalf.

    An agent shown `busy` with no live call (a lost hang-up, a closed browser) is stuck: the
    supervisor may release them. An agent really talking to a caller keeps `busy` until the
    call ends.
    """
    if status not in SELF_SERVICE_STATUSES:
        raise RoutingRefused(
            "A supervisor can set available, break or offline; busy and wrap-up follow calls.",
            field="status",
        )
    audit_reason = _audit_reason(reason)
    # The stuck case locks only the agent; every other case goes through the router's own
    # change, which takes its locks in the router's order (call, offer, agent).
    with transaction.atomic():
        agent = Agent.objects.select_for_update().filter(id=agent_id).first()
        if agent is None:
            raise RoutingRefused("No such agent.", field="agent", kind="not_found")
        if agent.status != AgentStatus.BUSY:
            agent = None
        elif Call.objects.filter(agent_id=agent_id, state__in=TALKING_STATES).exists():
            raise RoutingRefused(
                "This agent is talking to a caller; their status follows the call.",
                field="status",
            )
        else:
            routing_services.set_status(
                agent=agent, status=status, reason=audit_reason, changed_by=changed_by
            )
    if agent is not None:
        return agent
    return routing_services.change_status(
        agent_id=agent_id, status=status, changed_by=changed_by, reason=audit_reason
    )


@transaction.atomic
def move_waiting_call(
    *, telephony_call_id: str, queue_slug: str, moved_by: Any, reason: str = ""
) -> Call:
    """Move a caller who is still waiting to another queue, where the router takes them up.

    The caller's wait keeps counting from when they first reached a queue: to them it is one wait.
    """
    target = Queue.objects.filter(slug=queue_slug).first()
    if target is None:
        raise RoutingRefused(f"No queue '{queue_slug}'.", field="queue", kind="invalid")
    call = (
        Call.objects.select_for_update(of=("self",))
        .select_related("queue")
        .filter(telephony_call_id=telephony_call_id)
        .first()
    )
    if call is None:
        raise RoutingRefused("No such call.", field="call_id", kind="not_found")
    if call.state not in MOVABLE_STATES:
        raise RoutingRefused("Only a waiting call can be moved.", field="call_id")
    if call.queue_id == target.id:
        raise RoutingRefused("The call is already in that queue.", field="queue")

    now = timezone.now()
    from_queue = call.queue
    for agent_id in routing_services.withdraw_offers(call=call, now=now):
        routing_services.request_offer_for_agent(agent_id=agent_id)
    if call.state == CallState.OFFERED:
        routing_services.move_call(call, CallState.QUEUED, now=now)
    call.queue = target
    call.save(update_fields=["queue"])
    routing_services.record_decision(
        call=call,
        reason=DecisionReason.MOVED_BY_SUPERVISOR,
        now=now,
        detail={
            "from_queue": from_queue.slug if from_queue else None,
            "to_queue": target.slug,
            "moved_by": getattr(moved_by, "username", None),
            "moved_by_id": getattr(moved_by, "id", None),
            "reason": " ".join(reason.split())[:200],
        },
    )
    telephony_services.hand_call_to_router(call)
    notify_supervisors(queue_id=from_queue.id if from_queue else None)
    notify_supervisors(queue_id=target.id)
    return call
