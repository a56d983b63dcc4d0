"""What a supervisor does to calls from the dashboard; each action leaves a record of who did it
and why. (Setting an agent's status on their behalf is routing's `change_status`, the same rule
whichever endpoint asks.)

A moved call is a `RoutingDecision` with reason `moved_by_supervisor` naming the supervisor and
both queues. It goes through the router's own writes, so the agent's screen and every supervisor
screen hear of it after commit.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from routing import services as routing_services
from routing.broadcast import notify_supervisors
from routing.models import Call, DecisionReason, Queue
from routing.services import RoutingRefused
from routing.states import CallState

MOVABLE_STATES = frozenset({CallState.QUEUED, CallState.OFFERED})


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
    if call.agent_id is not None:
        # An agent took it and the telephony system is connecting them: routed again, the call
        # would be connected twice.
        raise RoutingRefused(
            "An agent accepted this call; it is being connected to them.", field="call_id"
        )
    if call.queue_id == target.id:
        raise RoutingRefused("The call is already in that queue.", field="queue")

    now = timezone.now()
    from_queue = call.queue
    for agent_id in routing_services.withdraw_offers(call=call, now=now):
        routing_services.request_offer_for_agent(agent_id=agent_id)
    if call.state == CallState.OFFERED:
        routing_services.move_call(call, CallState.QUEUED, now=now)
    call.queue = target
    call.save(update_fields=["queue", "state", "state_changed_at"])
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
    routing_services.request_routing(call=call)
    notify_supervisors(queue_id=from_queue.id if from_queue else None)
    notify_supervisors(queue_id=target.id)
    return call
