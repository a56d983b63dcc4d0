"""Applying a recorded event to its call (`telephony.recording` recorded it).

Events of one call serialise on the call's row lock; the call's state only moves forward in
`occurred_at` order and only along the moves of `routing.states`, with one exception: an end is
final for a live call, whatever its stamp (a phone system's whole seconds, or a second clock,
may stamp it before the call's latest applied event), and ends it no earlier than that event. An
event that cannot move the state is still kept (`applied=False` and why), and the details it
carries (caller, queue, agent) are kept when the call lacks them. Marking the event applied and
saving the call are one statement, done only while the event was still to apply: a task run
twice, or the sweeper and a task at once, apply an event once.

The webhook's events are applied by a worker (`apply_and_route`); the Twilio and Generic CTI
adapters, which answer with instructions, record and apply theirs at once (`accept_event`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from customers.phone_numbers import normalise_phone_number
from customers.selectors import CUSTOMERS_ON_NUMBER_SQL
from infrastructure import dispatch
from infrastructure.database import rows
from infrastructure.log_fields import call_fields
from infrastructure.metrics import EVENT_APPLY_DELAY_SECONDS, observe_since_on_commit
from routing import callbacks, handoff, router
from routing.models import Agent, Call, Callback, CallbackState, Queue
from routing.states import (
    FINAL_STATES,
    TALKING_STATES,
    WAITING_STATES,
    CallState,
    can_move_call,
)
from telephony import connect, recording, selectors
from telephony.events import (
    CALLBACK_REQUESTED,
    MAX_AHEAD_OF_CLOCK,
    VOICEMAIL,
    EventReceipt,
    TelephonyEvent,
)
from telephony.models import CallEvent, CallEventType
from telephony.queues import QUEUE_CHOSEN, default_queue, queue_wanted

logger = logging.getLogger(__name__)

APPLY_RECORDED_EVENT = "telephony.apply_recorded_event"
APPLY_EVENTS_WAITING_TOO_LONG = "telephony.apply_events_waiting_too_long"

_TARGET_STATE = {
    CallEventType.RINGING: CallState.QUEUED,
    CallEventType.ANSWERED: CallState.CONNECTED,
    CallEventType.HELD: CallState.HELD,
    CallEventType.RESUMED: CallState.CONNECTED,
    CallEventType.TRANSFERRED: CallState.TRANSFERRED,
}


def apply_and_route(event_id: int) -> None:
    """A worker's task: apply the recorded event; a call it queued is routed here and now, not
    by another task, so the caller waits for one trip through the broker."""
    with dispatch.done_by_this_task(handoff.ROUTE_CALL) as calls_to_route:
        apply_recorded_event(event_id)
    for (call_id,) in calls_to_route:
        router.route_call(call_id)


def apply_events_waiting_too_long() -> None:
    """Apply every recorded event whose task was lost, in the order they happened."""
    waiting = selectors.events_waiting_too_long(now=timezone.now())
    for event_id in waiting:
        apply_and_route(event_id)
    if waiting:
        logger.warning("%d recorded event(s) had lost their task; applied now", len(waiting))


def apply_recorded_event(event_id: int) -> EventReceipt | None:
    """Apply the recorded event to its call; None when it is already applied (a repeated task,
    the sweeper and a task at once) or gone."""
    recorded = recording.recorded_event(event_id)
    if recorded is None:
        return None
    event, received_at = recorded
    with transaction.atomic():
        receipt = _apply(event_id, event)
        if receipt is None:
            transaction.set_rollback(True)
        else:
            observe_since_on_commit(EVENT_APPLY_DELAY_SECONDS, received_at)
        return receipt


def accept_event(
    *,
    webhook_id: str,
    event: TelephonyEvent,
    status_reason: str = "",
    changed_by: Any = None,
) -> EventReceipt:
    """Record `event` once per `webhook_id` and apply it at once, in one transaction: for a
    phone system that waits for its answer, and for Rapport's own ends of a call the phone
    system forgot (`telephony.lost_calls`: `status_reason` and `changed_by` are then what the
    agent's status change records). Durable on return; a repeated delivery changes nothing.

    A stamp far ahead of Rapport's clock is taken as now: these senders cannot be asked to
    send again (the signed webhook refuses such an event instead)."""
    latest = timezone.now() + MAX_AHEAD_OF_CLOCK
    if event.occurred_at > latest:
        logger.warning(
            "call %r: %s stamped %s, far ahead of Rapport's clock; taken as now",
            event.call_id,
            event.type,
            event.occurred_at.isoformat(),
            extra=call_fields(event.call_id),
        )
        event = replace(event, occurred_at=timezone.now())
    with transaction.atomic():
        event_id = recording.record_event(webhook_id=webhook_id, event=event)
        if event_id is None:
            logger.debug(
                "call %r: %s delivered again",
                event.call_id,
                event.type,
                extra=call_fields(event.call_id),
            )
            return EventReceipt(duplicate=True)
        return _apply(event_id, event, status_reason=status_reason, changed_by=changed_by)


def _apply(
    event_id: int, event: TelephonyEvent, *, status_reason: str = "", changed_by: Any = None
) -> EventReceipt | None:
    """Apply the recorded event `event_id` (`event`) to its call, locked here; None when it was
    already applied."""
    call, ringing_lookup = _lock_call(event)
    target, outcome = _state_move(call, event)
    before = _Before(agent_id=call.agent_id, state=call.state, connected_at=call.connected_at)
    changed = _keep_details(call, event, moving=target is not None, ringing=ringing_lookup)
    if target is not None:
        changed |= _move(call, event, target)
    if not _mark_applied_and_save(
        event_id=event_id,
        call=call,
        outcome=outcome,
        changed=changed,
        from_number=event.from_number,
    ):
        return None
    logged = call_fields(event.call_id, call.agent_id)
    if target is not None:
        logger.info("call %r: %s, now %s", event.call_id, event.type, target, extra=logged)
    else:
        logger.info(
            "call %r: %s kept, not applied: %s", event.call_id, event.type, outcome, extra=logged
        )
    if target is not None:
        if ringing_lookup is not None and ringing_lookup.callback_waiting:
            callbacks.match_caller_ringing_again(call)
        _tell_router(call, event, before=before, status_reason=status_reason, changed_by=changed_by)
    elif call.agent_id != before.agent_id and call.state in TALKING_STATES:
        # A late event named the agent the call is with now: the call changed hands.
        router.call_transferred(call, from_agent_id=before.agent_id)
    elif _answered_before_the_end_applied(call, event, before):
        # The end overtook this answer on the way: the agent talked to the caller after all.
        router.call_answered_after_it_ended(call)
        if call.callback_id is not None:
            callbacks.attempt_answered_after_it_ended(call)
    return EventReceipt(duplicate=False, applied=target is not None)


@dataclass(frozen=True)
class _Before:
    """What the router is told besides the call: how it stood before this event."""

    agent_id: int | None
    state: str
    connected_at: datetime | None


def lock_call(telephony_call_id: str) -> Call:
    """The call, created if unknown, its row locked until the transaction ends: what serialises
    the events of one call. One statement (`recording.call_upsert`)."""
    upsert, defaults, field_names = recording.call_upsert()
    with rows.prepared_cursor() as cursor:
        cursor.execute(upsert, {**defaults, "call_telephony_call_id": telephony_call_id})
        row = cursor.fetchone()
    return Call.from_db(connection.alias, field_names, row)


@dataclass(frozen=True)
class RingingLookup:
    """What a ringing event needs to know besides its call, read with the call's lock: the
    customers on the caller's number and the queue `telephony.queues` picks (None: the default
    queue does not exist yet)."""

    from_e164: str
    customer_ids: list[int]
    queue: Queue | None
    # A call back for this number waits in a queue (routing.callbacks): this call may be it.
    callback_waiting: bool = False


def _lock_call(event: TelephonyEvent) -> tuple[Call, RingingLookup | None]:
    """The call, created if this is its first event (any event may be), its row locked; for a
    ringing event, its `RingingLookup` too.

    One statement: an upsert whose no-op update takes the row lock that serialises the events
    of one call, and returns the row; a ringing event reads the caller's customers and the
    queue in the same statement, as every call that comes in needs them.
    """
    if event.type != CallEventType.RINGING:
        return lock_call(event.call_id), None
    upsert, defaults, field_names = recording.call_upsert()
    params = {**defaults, "call_telephony_call_id": event.call_id}
    from_e164 = normalise_phone_number(event.from_number) or ""
    sql = f"""
        WITH locked AS ({upsert})
        SELECT locked.*, ARRAY({CUSTOMERS_ON_NUMBER_SQL}),
            EXISTS (SELECT 1 FROM {Callback._meta.db_table} callback
                    WHERE callback.number = %(number)s AND callback.state = %(callback_waiting)s),
            chosen.*
        FROM locked
        LEFT JOIN LATERAL (
            SELECT {rows.columns(Queue, "queue")} FROM {Queue._meta.db_table} queue
            WHERE {QUEUE_CHOSEN}
        ) chosen ON true
    """
    params.update(
        number=from_e164,
        callback_waiting=CallbackState.WAITING,
        **queue_wanted(event.queue_slug, event.to_number),
    )
    with rows.prepared_cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    call_values, (customer_ids, callback_waiting), queue_values = (
        row[: len(field_names)],
        row[len(field_names) : len(field_names) + 2],
        row[len(field_names) + 2 :],
    )
    queue = None
    if queue_values[0] is not None:
        queue = rows.instance(Queue, queue_values)
    return (
        Call.from_db(connection.alias, field_names, call_values),
        RingingLookup(
            from_e164=from_e164,
            customer_ids=customer_ids,
            queue=queue,
            callback_waiting=callback_waiting,
        ),
    )


def _mark_applied_and_save(
    *, event_id: int, call: Call, outcome: str, changed: set[str], from_number: str
) -> bool:
    """Mark the recorded event applied (or why not) unless it already was and, in the same
    statement, write the call's `changed` fields only when it was not; True when it was not.
    Nor when its caller's number is no longer the `from_number` it was applied with: the
    customer was erased since (privacy.services), and beat's task applies it again without."""
    marked = f"""
        UPDATE {CallEvent._meta.db_table}
        SET fields_to_apply = NULL, applied = %s, outcome = %s
        WHERE id = %s AND fields_to_apply IS NOT NULL
            AND coalesce(fields_to_apply ->> 'from_number', '') = %s
        RETURNING id
    """
    params = [not outcome, outcome[:200], event_id, from_number]
    assignments, values = _call_assignments(call, changed)
    sql = marked
    if assignments:
        sql = f"""
            WITH marked AS ({marked}),
            saved AS (
                UPDATE {Call._meta.db_table} SET {assignments}
                WHERE id = %s AND EXISTS (SELECT FROM marked)
            )
            SELECT id FROM marked
        """
        params = [*params, *values, call.pk]
    with rows.prepared_cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone() is not None


def _call_assignments(call: Call, changed: set[str]) -> tuple[str, list]:
    """`SET` clauses and their values for the call's `changed` fields, as `Model.save` would
    write them."""
    quote = connection.ops.quote_name
    fields = [Call._meta.get_field(name) for name in sorted(changed)]
    assignments = ", ".join(f"{quote(field.column)} = %s" for field in fields)
    values = [field.get_db_prep_save(getattr(call, field.attname), connection) for field in fields]
    return assignments, values


def _state_move(call: Call, event: TelephonyEvent) -> tuple[str | None, str]:
    """The state `event` moves the call to, or None and why it does not."""
    older = call.last_event_at is not None and event.occurred_at < call.last_event_at
    # An end is final for a live call, whatever its stamp: kept unapplied, it would leave the
    # call live and its agent busy for good, as no later event comes.
    if older and not (event.type == CallEventType.ENDED and call.state not in FINAL_STATES):
        return None, "older than the call's latest applied event; its details were kept"
    if event.type == CallEventType.TRANSFERRED and not _known_agent(event.agent_identity):
        logger.warning(
            "call %r: transferred to unknown agent %r",
            event.call_id,
            event.agent_identity,
            extra=call_fields(event.call_id, call.agent_id),
        )
        return None, "transferred to an agent Rapport does not know; the call keeps its agent"
    if event.type == CallEventType.ENDED:
        target = _end_state(call, event.reason)
    elif event.type == CallEventType.CALLBACK_REQUESTED:
        if call.state not in WAITING_STATES or call.connected_at is not None:
            return None, "only a caller still waiting can ask for a call back"
        target = CallState.ENDED
    elif event.type == CallEventType.RINGING and call.state != CallState.RINGING:
        return None, f"the call is already {call.state}"
    elif event.type == CallEventType.RINGING and event.routed_by_telephony:
        # It rings at the phones the telephony system chose; it stays ringing until answered.
        return CallState.RINGING, ""
    else:
        target = _TARGET_STATE[event.type]
    if not can_move_call(call.state, target):
        return None, f"a call cannot move from {call.state} to {target}"
    return target, ""


def _end_state(call: Call, reason: str) -> str:
    # A caller who hangs up before anyone answered abandoned the call, whatever the reason says,
    # unless the telephony system says it was completed (its answer may not have arrived yet).
    if call.state in WAITING_STATES and call.connected_at is None and reason == VOICEMAIL:
        return CallState.ENDED
    if call.state in WAITING_STATES and call.connected_at is None and reason != "completed":
        # A call Rapport placed to call a customer back that nobody answered was not abandoned
        # by a caller: it is tried again (routing.callbacks).
        if call.callback_id is not None:
            return CallState.ENDED
        return CallState.ABANDONED
    return CallState.ENDED


def _keep_details(
    call: Call, event: TelephonyEvent, *, moving: bool, ringing: RingingLookup | None
) -> set[str]:
    """Fill in what the event tells about the call: all of it when it moves the call, else only
    what the call does not know yet. `ringing`: a ringing event's lookup (`_lock_call`)."""
    changed: set[str] = set()
    if event.type == CallEventType.RINGING and call.ringing_at is None:
        call.ringing_at = event.occurred_at
        call.from_number = event.from_number[:64]
        call.from_e164 = ringing.from_e164
        call.to_number = event.to_number[:64]
        changed |= {"ringing_at", "from_number", "from_e164", "to_number"}
        if call.queue_id is None:
            call.queue = ringing.queue or default_queue()
            changed.add("queue")
        changed |= _match_customers(call, ringing.customer_ids)
    elif event.type == CallEventType.ANSWERED:
        if moving or _latest_agent_event(call, event):
            call.agent = _agent_with_identity(event.agent_identity)
            changed.add("agent")
        if call.connected_at is None:
            call.connected_at = event.occurred_at
            changed.add("connected_at")
        if (
            call.state == CallState.ABANDONED
            and call.end_reason != "abandoned"
            and call.ended_at is not None
            and event.occurred_at <= call.ended_at
        ):
            # The hang-up arrived before this answer, so "abandoned" was a guess; the answer
            # proves the caller was connected. Correcting the record is not a move of a live call.
            call.state = CallState.ENDED
            changed.add("state")
    elif event.type == CallEventType.TRANSFERRED and (moving or _latest_agent_event(call, event)):
        agent = _agent_with_identity(event.agent_identity)
        if agent is not None:
            call.agent = agent
            changed.add("agent")
    return changed


def _latest_agent_event(call: Call, event: TelephonyEvent) -> bool:
    """Whether this late event names the call's agent: no later answer or transfer does."""
    return not CallEvent.objects.filter(
        call=call,
        type__in=(CallEventType.ANSWERED, CallEventType.TRANSFERRED),
        occurred_at__gt=event.occurred_at,
    ).exists()


def _move(call: Call, event: TelephonyEvent, target: str) -> set[str]:
    now = timezone.now()
    call.state = target
    call.state_changed_at = now
    # Only an end moves a call with an older stamp: it ends no earlier than what it follows.
    happened = max(event.occurred_at, call.last_event_at or event.occurred_at)
    call.last_event_at = happened
    changed = {"state", "state_changed_at", "last_event_at"}
    if target == CallState.QUEUED:
        call.queued_at = now
        changed.add("queued_at")
    elif event.type == CallEventType.ENDED:
        call.ended_at = happened
        call.end_reason = event.reason
        changed |= {"ended_at", "end_reason"}
    elif event.type == CallEventType.CALLBACK_REQUESTED:
        call.ended_at = happened
        call.end_reason = CALLBACK_REQUESTED
        changed |= {"ended_at", "end_reason"}
    return changed


def _tell_router(
    call: Call, event: TelephonyEvent, *, before: _Before, status_reason: str, changed_by: Any
) -> None:
    if call.state == CallState.QUEUED:
        router.call_arrived(call)
    elif event.type == CallEventType.ANSWERED and _handed_over(call, before):
        # Answered by another agent while the call talked to the first (held with them, say):
        # a hand-over, as a transfer, or the first agent stays busy with no call.
        router.call_transferred(call, from_agent_id=before.agent_id)
    elif event.type == CallEventType.ANSWERED:
        router.call_answered(call)
    elif event.type == CallEventType.TRANSFERRED:
        router.call_transferred(call, from_agent_id=before.agent_id)
    elif event.type == CallEventType.ENDED:
        router.call_ended(call, reason=status_reason or router.CALL_ENDED, changed_by=changed_by)
        if call.callback_id is not None:
            callbacks.attempt_ended(call)
    elif event.type == CallEventType.CALLBACK_REQUESTED:
        router.call_ended(call)
        callbacks.open_callback(call, agent_dials=not connect.rapport_places_callbacks_of(call))


def _answered_before_the_end_applied(call: Call, event: TelephonyEvent, before: _Before) -> bool:
    """An answer, stamped no later than the end, that arrived after the end was applied."""
    return (
        event.type == CallEventType.ANSWERED
        and call.state in FINAL_STATES
        and before.connected_at is None
        and call.connected_at is not None
        and call.ended_at is not None
        and event.occurred_at <= call.ended_at
    )


def _handed_over(call: Call, before: _Before) -> bool:
    return (
        before.state in TALKING_STATES
        and before.agent_id is not None
        and call.agent_id is not None
        and call.agent_id != before.agent_id
    )


def _match_customers(call: Call, customer_ids: list[int]) -> set[str]:
    """One customer on the number: the caller. Several: candidates to ask. None: unknown."""
    if len(customer_ids) == 1:
        call.customer_id = customer_ids[0]
        return {"customer"}
    if customer_ids:
        Call.candidates.through.objects.bulk_create(
            [
                Call.candidates.through(call_id=call.pk, customer_id=customer_id)
                for customer_id in customer_ids
            ],
            ignore_conflicts=True,
        )
    return set()


def _known_agent(identity: str) -> bool:
    return bool(identity) and Agent.objects.filter(telephony_identity=identity).exists()


def _agent_with_identity(identity: str) -> Agent | None:
    if not identity:
        return None
    agent = rows.first_where(Agent, "telephony_identity = %(identity)s", {"identity": identity})
    if agent is None:
        logger.warning("telephony event names unknown agent %r", identity)
    return agent
