"""What a supervisor does to calls from the dashboard; each action leaves a record of who did it
and why. (Setting an agent's status on their behalf is routing's `change_status`, the same rule
whichever endpoint asks.)

A moved call is a `RoutingDecision` with reason `moved_by_supervisor` naming the supervisor and
both queues. A call the telephony system forgot, ended by a supervisor, is a recorded
`call.ended` event naming them and their reason, and their name and reason are on the agent's
status change. It goes through the router's own writes, so the agent's screen and every supervisor
screen hear of it after commit.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from customers.audit import record_first_sight
from customers.models import AccessReason
from infrastructure.broadcast import notify_supervisors
from infrastructure.errors import Invalid, NotFound, Refused
from routing import calls, decisions, handoff, offers
from routing.models import Call, DecisionReason, Queue
from routing.states import FINAL_STATES, CallState
from supervisor import floor, today
from supervisor.models import CallBack
from telephony import lost_calls

logger = logging.getLogger(__name__)

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
        raise Invalid(f"No queue '{queue_slug}'.", field="queue")
    call = (
        Call.objects.select_for_update(of=("self",))
        .select_related("queue")
        .filter(telephony_call_id=telephony_call_id)
        .first()
    )
    if call is None:
        raise NotFound("No such call.", field="call_id")
    if call.state not in MOVABLE_STATES:
        raise Refused("Only a waiting call can be moved.", field="call_id")
    if call.agent_id is not None:
        # An agent took it and the telephony system is connecting them: routed again, the call
        # would be connected twice.
        raise Refused(
            "An agent accepted this call; it is being connected to them.", field="call_id"
        )
    if call.queue_id == target.id:
        raise Refused("The call is already in that queue.", field="queue")

    now = timezone.now()
    from_queue = call.queue
    for agent_id in offers.withdraw_offers(call=call, now=now):
        handoff.request_offer_for_agent(agent_id=agent_id)
    if call.state == CallState.OFFERED:
        calls.move_call(call, CallState.QUEUED, now=now)
    call.queue = target
    call.save(update_fields=["queue", "state", "state_changed_at"])
    decisions.record_decision(
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
    handoff.request_routing(call_id=call.id)
    notify_supervisors(queue_id=from_queue.id if from_queue else None)
    notify_supervisors(queue_id=target.id)
    return call


SUPERVISOR_ENDED_REASON = "call_ended_by_supervisor"


@transaction.atomic
def end_forgotten_call(*, telephony_call_id: str, ended_by: Any, reason: str) -> Call:
    """End a live call the telephony system forgot (its hang-up never came), so its agent is
    free: the call ends as `lost` (abandoned when nobody was connected), and its agent goes to
    wrap-up after a conversation, else available. Through the path every end takes
    (`telephony.lost_calls`), audited with who and the `reason` they typed."""
    typed = " ".join(reason.split())
    if not typed:
        raise Invalid("Say why the call is ended: the phone system did not.", field="reason")
    call = (
        Call.objects.select_for_update(of=("self",))
        .filter(telephony_call_id=telephony_call_id)
        .first()
    )
    if call is None:
        raise NotFound("No such call.", field="call_id")
    if call.state in FINAL_STATES:
        raise Refused("This call has already ended.", field="call_id")
    lost_calls.end_as_lost(
        call,
        status_reason=f"{SUPERVISOR_ENDED_REASON}: {typed}"[:100],
        changed_by=ended_by,
        ended_by={
            "supervisor": ended_by.get_username(),
            "supervisor_id": ended_by.pk,
            "reason": typed[:200],
        },
    )
    logger.warning(
        "call %r: ended by %s, the phone system had forgotten it: %s",
        telephony_call_id,
        ended_by.get_username(),
        typed[:200],
    )
    return Call.objects.select_related("agent").get(id=call.id)


def mark_called_back(*, telephony_call_id: str, user: Any) -> CallBack:
    """`user` called back a caller who hung up before they were answered. Recorded once, with
    who and when: a second mark is refused, naming who did it first, so two people do not both
    ring the same customer."""
    call = Call.objects.filter(telephony_call_id=telephony_call_id).only("id", "state").first()
    if call is None:
        raise NotFound("No such call.", field="call_id")
    if call.state != CallState.ABANDONED:
        raise Refused(
            "Only a caller who hung up before being answered is called back.", field="call_id"
        )
    try:
        with transaction.atomic():
            call_back = CallBack.objects.create(
                call=call, called_back_by=user, username=user.get_username()
            )
    except IntegrityError:
        earlier = CallBack.objects.get(call=call)
        raise Refused(
            f"{earlier.username} already called this caller back.", field="call_id"
        ) from None
    call_back.refresh_from_db(fields=["called_back_at"])
    notify_supervisors()
    return call_back


def abandoned_callers_seen(*, user: Any) -> list[dict[str, Any]]:
    """Today's abandoned callers with names and numbers, as `user` is shown them: each
    identified caller is recorded in the access log once per call, like the wall's."""
    abandoned = today.abandoned_today(timezone.now(), caller_names=True)
    record_first_sight(
        shown=floor.callers_named({"agents": [], "abandoned": abandoned}),
        user=user,
        reason=AccessReason.SUPERVISOR,
    )
    return abandoned
