"""What the telephony system may ask of Rapport about a call."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import Case, Q, When

from customers.models import Customer
from customers.phone_numbers import normalise_phone_number
from customers.selectors import customer_ids_for_number
from routing import policy
from routing.models import Agent, Call, Queue, RoutingDecision
from routing.selectors import agent_standing, calls_accepted_not_answered, last_agent
from routing.states import OfferState
from telephony.models import CallEvent, CallEventType, ConnectAttempt, TwilioCall


def call_instruction(*, telephony_call_id: str) -> dict[str, Any] | None:
    """What a pulling telephony system needs: the call's state and the agent to connect."""
    call = (
        Call.objects.select_related("queue", "agent")
        .filter(telephony_call_id=telephony_call_id)
        .first()
    )
    if call is None:
        return None
    accepted = (
        RoutingDecision.objects.select_related("agent")
        # Only an accepted offer names whom to connect: the router also records decisions that
        # name the last agent only to say they were unavailable or busy.
        .filter(call=call, agent__isnull=False, offer__state=OfferState.ACCEPTED)
        .order_by("-decided_at", "-id")
        .first()
    )
    agent = call.agent or (accepted.agent if accepted is not None else None)
    return {
        "call_id": call.telephony_call_id,
        "state": call.state,
        "queue": call.queue.slug if call.queue is not None else None,
        "agent": agent.telephony_identity if agent is not None else None,
        "decision_id": accepted.pk if accepted is not None else None,
    }


def connect_backoff_seconds(attempt: int) -> float:
    """How long the push waits after its failed `attempt` before the next one."""
    base = settings.TELEPHONY_CONNECT_RETRY_SECONDS
    return min(base * 2 ** (attempt - 1), settings.TELEPHONY_CONNECT_RETRY_MAX_SECONDS)


# A call accepted this long ago and still not answered may have lost its `call.connect`.
CONNECT_LOST_AFTER = timedelta(seconds=2)


def any_connect_pending(*, now: datetime) -> bool:
    """Whether a call waits to be connected to the agent who took it (one query: beat asks
    every second, and only then sends the task that looks for lost pushes)."""
    return calls_accepted_not_answered(accepted_before=now - CONNECT_LOST_AFTER).exists()


def connect_pushes_lost(*, now: datetime) -> list[tuple[int, int]]:
    """`(call pk, decision pk)` of each accepted, unanswered call whose `call.connect` push is
    neither delivered nor still on its way: never tried, or its next try is overdue. A push is
    given its backoff and then its timeout and a moment more before it counts as lost."""
    patience = timedelta(seconds=settings.TELEPHONY_CONNECT_TIMEOUT_SECONDS + 2)
    awaiting = (
        RoutingDecision.objects.filter(
            call__in=calls_accepted_not_answered(accepted_before=now - patience),
            offer__state=OfferState.ACCEPTED,
        )
        # A Twilio caller dialled to the agent by the wait loop's fallback needs no push.
        .exclude(
            pk__in=TwilioCall.objects.filter(dialled_decision__isnull=False).values(
                "dialled_decision"
            )
        )
        .values_list("call_id", "id")
    )
    lost = []
    for call_pk, decision_pk in awaiting:
        latest = (
            ConnectAttempt.objects.filter(call_id=call_pk, decision_id=decision_pk)
            .order_by("-id")
            .values_list("attempt", "status_code", "sent_at")
            .first()
        )
        if latest is not None:
            attempt, status_code, sent_at = latest
            if status_code is not None and 200 <= status_code < 300:
                continue
            due = sent_at + timedelta(seconds=connect_backoff_seconds(attempt))
            if due + patience > now:
                continue
        lost.append((call_pk, decision_pk))
    return lost


def agents_named(names: list[str]) -> list[Agent]:
    """The agents a phone system names (Generic CTI's `user`): by username, display name or
    telephony identity. One query."""
    names = [name.strip() for name in names if name and name.strip()]
    if not names:
        return []
    return list(
        Agent.objects.filter(
            Q(user__username__in=names)
            | Q(display_name__in=names)
            | Q(telephony_identity__in=names)
        )
        .select_related("user")
        .order_by("id")
    )


def agent_answering(number: str) -> Agent | None:
    """The agent a Generic CTI `answeringNumber` names: their telephony identity, else their
    username."""
    number = number.strip()
    if not number:
        return None
    return (
        Agent.objects.filter(Q(telephony_identity=number) | Q(user__username=number))
        .annotate(by_identity=Case(When(telephony_identity=number, then=0), default=1))
        .order_by("by_identity", "id")
        .first()
    )


def agents_rung_for(call: Call) -> list[int]:
    """The agents whose phones the telephony system said ring for `call` (its ringing events'
    named users, see telephony.generic_cti)."""
    named = CallEvent.objects.filter(call=call, type=CallEventType.RINGING).values_list(
        "payload__user", flat=True
    )
    names = [name for users in named if isinstance(users, list) for name in users]
    return [agent.id for agent in agents_named([n for n in names if isinstance(n, str)])]


def route_hint(*, from_number: str, queue: Queue, now: datetime) -> dict[str, Any]:
    """Whom a PBX that routes its own calls should ring first for a caller from `from_number`,
    and for how long: the router's own last-agent step (routing.policy.last_agent_step) at its
    first look at a call. Offered: the last agent, rung for as long as an offer would ring;
    held for: the last agent, for as long as the caller may be held for them; else nobody, and
    the router's reason why. Names no customer."""
    nobody = {"agent": None, "status": None, "wait_seconds": 0}
    customer_ids = customer_ids_for_number(normalise_phone_number(from_number) or "")
    if not customer_ids:
        return {**nobody, "reason": "unknown_caller"}
    if len(customer_ids) > 1:
        return {**nobody, "reason": "shared_number"}
    customer = Customer.objects.only(
        "pace", "pace_source", "hold_tolerance", "hold_tolerance_source"
    ).get(id=customer_ids[0])
    last = last_agent(customer_id=customer.id, queue_id=queue.id, now=now)
    if last is None:
        return {**nobody, "reason": "no_last_agent"}
    identity, standing = agent_standing(agent_id=last["id"], queue_id=queue.id)
    step = policy.last_agent_step(
        standing,
        hold=policy.hold_rule(customer=customer, queue=queue),
        first=True,
        wait_until=None,
        now=now,
    )
    if step.action == policy.OFFER:
        wait = queue.offer_timeout_seconds
    elif step.action == policy.HOLD:
        wait = step.wait_seconds
    else:
        return {**nobody, "status": standing.status, "reason": str(step.reason)}
    return {
        "agent": identity,
        "status": standing.status,
        "wait_seconds": wait,
        "reason": str(step.reason),
    }


# An event the intake recorded is applied by the task it published, within milliseconds;
# one still waiting after this long lost its task (the broker was away, a worker died).
EVENT_TASK_LOST_AFTER = timedelta(seconds=5)


def anything_to_apply(*, now: datetime) -> bool:
    """Whether a recorded event waits longer for its worker than it should (one query on a
    partial index: beat asks it every few seconds)."""
    return _waiting_too_long(now).exists()


def events_waiting_too_long(*, now: datetime, limit: int = 200) -> list[int]:
    """The recorded events whose task was lost, oldest first (by when they happened)."""
    return list(
        _waiting_too_long(now).order_by("occurred_at", "id").values_list("id", flat=True)[:limit]
    )


def _waiting_too_long(now: datetime):
    return CallEvent.objects.filter(
        fields_to_apply__isnull=False, received_at__lte=now - EVENT_TASK_LOST_AFTER
    )
