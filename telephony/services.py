"""Telephony events in, routing instructions out (see ../shared/contracts/telephony-events.md).

`accept_event` is the webhook's one write: in one transaction it records the event exactly once
per webhook id and applies it to the call. Events of one call serialise on the call's row lock;
the call's state only moves forward in `occurred_at` order and only along the moves of
`routing.states`.
An event that cannot move the state is still recorded (`applied=False` and why), and the details
it carries (caller, queue, agent) are kept when the call lacks them.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Model
from django.utils import timezone

from customers.card_numbers import mask_card_numbers_in
from customers.phone_numbers import normalise_phone_number
from customers.selectors import CUSTOMERS_ON_NUMBER_SQL
from infrastructure import dispatch
from infrastructure.database import rows
from routing import router
from routing.models import Agent, Call, Queue, RoutingDecision
from routing.states import TALKING_STATES, WAITING_STATES, CallState, can_move_call
from telephony.models import CallEvent, CallEventType, TwilioCall
from telephony.tasks import PUSH_CALL_CONNECT, TWILIO_DIAL_AGENT

logger = logging.getLogger(__name__)

END_REASONS = ("completed", "abandoned", "busy", "failed", "no-answer")

_TARGET_STATE = {
    CallEventType.RINGING: CallState.QUEUED,
    CallEventType.ANSWERED: CallState.CONNECTED,
    CallEventType.HELD: CallState.HELD,
    CallEventType.RESUMED: CallState.CONNECTED,
    CallEventType.TRANSFERRED: CallState.TRANSFERRED,
}


@dataclass(frozen=True)
class TelephonyEvent:
    """One validated inbound event; `payload` is the whole body as received."""

    type: str
    call_id: str
    occurred_at: datetime
    from_number: str = ""
    to_number: str = ""
    queue_slug: str = ""
    agent_identity: str = ""
    reason: str = ""
    payload: dict[str, Any] = field(default_factory=dict)
    # The telephony system routes this call itself (Generic CTI): ringing records the call and
    # its caller but does not queue it, so the router never offers it to an agent.
    routed_by_telephony: bool = False


@dataclass(frozen=True)
class EventReceipt:
    duplicate: bool
    call_state: str
    applied: bool = False
    outcome: str = ""


def accept_event(*, webhook_id: str, event: TelephonyEvent) -> EventReceipt:
    """Record `event` once per `webhook_id` and apply it to its call; durable on return."""
    with transaction.atomic():
        call, ringing_lookup = _lock_call(event)
        state_before = call.state

        def record_and_save(changed: set[str], outcome: str) -> bool:
            # One statement records the event and, only when its webhook id is new, saves
            # the call.
            return _record_event_and_save(
                webhook_id=webhook_id, call=call, event=event, outcome=outcome, changed=changed
            )

        receipt = _apply(call, event, ringing_lookup, write=record_and_save)
        if receipt is None:
            # A repeated delivery changes nothing, not even a call row it would have created.
            transaction.set_rollback(True)
            logger.debug("call %r: %s delivered again", event.call_id, event.type)
            return EventReceipt(duplicate=True, call_state=state_before)
        return receipt


def apply_recorded_event(event_id: int) -> EventReceipt | None:
    """Apply an event the webhook's intake recorded (`record_event_sql`) to its call, as
    `accept_event` would have; None when it is already applied (a repeated task, the sweeper
    and a task at once) or gone."""
    recorded = _recorded_event(event_id)
    if recorded is None:
        return None
    with transaction.atomic():
        call, ringing_lookup = _lock_call(recorded)

        def mark_applied_and_save(changed: set[str], outcome: str) -> bool:
            return _mark_applied_and_save(
                event_id=event_id, call=call, outcome=outcome, changed=changed
            )

        receipt = _apply(call, recorded, ringing_lookup, write=mark_applied_and_save)
        if receipt is None:
            transaction.set_rollback(True)
        return receipt


def _apply(
    call: Call,
    event: TelephonyEvent,
    ringing_lookup: RingingLookup | None,
    *,
    write: Callable[[set[str], str], bool],
) -> EventReceipt | None:
    """Apply `event` to `call` (locked): `write` saves the call's changed fields and the
    event's outcome, and says whether this event was still to apply; None when it was not."""
    target, outcome = _state_move(call, event)
    agent_before = call.agent_id
    changed = _keep_details(call, event, moving=target is not None, ringing=ringing_lookup)
    if target is not None:
        changed |= _move(call, event, target)
    if not write(changed, outcome):
        return None
    if target is not None:
        logger.info("call %r: %s, now %s", event.call_id, event.type, target)
    else:
        logger.info("call %r: %s kept, not applied: %s", event.call_id, event.type, outcome)
    if target is not None:
        _tell_router(call, event, agent_before=agent_before)
    elif call.agent_id != agent_before and call.state in TALKING_STATES:
        # A late event named the agent the call is with now: the call changed hands.
        router.call_transferred(call, from_agent_id=agent_before)
    return EventReceipt(
        duplicate=False, call_state=call.state, applied=target is not None, outcome=outcome
    )


def request_connect(call: Call, decision: RoutingDecision | None) -> None:
    """Tell the telephony system which agent to connect (pushed after commit, with retries).

    The agent is the decision's, or without a decision the call's. A call that came in through
    Twilio is bridged by Rapport itself, with a REST update of the live call.
    """
    decision_pk = decision.pk if decision is not None else None
    if TwilioCall.objects.filter(call_id=call.pk).exists():
        dispatch.publish_on_commit(TWILIO_DIAL_AGENT, call.pk, decision_pk)
        return
    if not settings.TELEPHONY_CONTROL_URL:
        return
    dispatch.publish_on_commit(PUSH_CALL_CONNECT, call.pk, decision_pk)


@dataclass(frozen=True)
class RingingLookup:
    """What a ringing event needs to know besides its call, read with the call's lock: the
    customers on the caller's number and the queue `choose_queue` picks (None: the default
    queue does not exist yet)."""

    from_e164: str
    customer_ids: list[int]
    queue: Queue | None


def _lock_call(event: TelephonyEvent) -> tuple[Call, RingingLookup | None]:
    """The call, created if this is its first event (any event may be), its row locked; for a
    ringing event, its `RingingLookup` too.

    One statement: an upsert whose no-op update takes the row lock that serialises the events
    of one call, and returns the row; a ringing event reads the caller's customers and the
    queue in the same statement, as every call that comes in needs them.
    """
    upsert, defaults, field_names = _call_upsert()
    params = {**defaults, "call_telephony_call_id": event.call_id}
    if event.type != CallEventType.RINGING:
        with rows.prepared_cursor() as cursor:
            cursor.execute(upsert, params)
            row = cursor.fetchone()
        return Call.from_db(connection.alias, field_names, row), None
    from_e164 = normalise_phone_number(event.from_number) or ""
    columns, attnames = _columns_of(Queue)
    sql = f"""
        WITH locked AS ({upsert})
        SELECT locked.*, ARRAY({CUSTOMERS_ON_NUMBER_SQL}), chosen.*
        FROM locked
        LEFT JOIN LATERAL (
            SELECT {columns} FROM {Queue._meta.db_table} WHERE {_QUEUE_CHOSEN}
        ) chosen ON true
    """
    params.update(number=from_e164, **_queue_wanted(event.queue_slug, event.to_number))
    with rows.prepared_cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    call_values, (customer_ids,), queue_values = (
        row[: len(field_names)],
        row[len(field_names) : len(field_names) + 1],
        row[len(field_names) + 1 :],
    )
    queue = None
    if queue_values[0] is not None:
        queue = Queue.from_db(connection.alias, attnames, queue_values)
    return (
        Call.from_db(connection.alias, field_names, call_values),
        RingingLookup(from_e164=from_e164, customer_ids=customer_ids, queue=queue),
    )


@functools.cache
def _call_upsert() -> tuple[str, dict[str, Any], list[str]]:
    """The upsert's SQL and a new call's values as its parameters (every column without a
    database default, all constants, `call_telephony_call_id` to fill in), built once; the
    columns returned."""
    fields = [
        field
        for field in Call._meta.concrete_fields
        if not field.primary_key and not field.has_db_default()
    ]
    fresh = Call(telephony_call_id="")
    # Named `call_<column>`, apart from the names of what a statement reads with the upsert.
    defaults = {
        f"call_{field.column}": field.get_db_prep_save(field.pre_save(fresh, True), connection)
        for field in fields
    }
    quote = connection.ops.quote_name
    returned = Call._meta.concrete_fields
    sql = f"""
        INSERT INTO {quote(Call._meta.db_table)} ({", ".join(quote(f.column) for f in fields)})
        VALUES ({", ".join(f"%(call_{f.column})s" for f in fields)})
        ON CONFLICT (telephony_call_id) DO UPDATE SET telephony_call_id = EXCLUDED.telephony_call_id
        RETURNING {", ".join(quote(f.column) for f in returned)}
    """
    return sql, defaults, [field.attname for field in returned]


def _record_event_and_save(
    *, webhook_id: str, call: Call, event: TelephonyEvent, outcome: str, changed: set[str]
) -> bool:
    """Insert the CallEvent unless this webhook id is known and, in the same statement, write
    the call's `changed` fields only when the event was new; True when it was."""
    event_values = [
        webhook_id,
        call.pk,
        event.type,
        event.occurred_at,
        json.dumps(mask_card_numbers_in(event.payload)),
        not outcome,
        outcome[:200],
    ]
    recorded = f"""
        INSERT INTO {CallEvent._meta.db_table}
            (webhook_id, call_id, type, occurred_at, received_at, payload, applied, outcome)
        VALUES (%s, %s, %s, %s, now(), %s::jsonb, %s, %s)
        ON CONFLICT (webhook_id) DO NOTHING
        RETURNING id
    """
    return _event_written_and_call_saved(recorded, event_values, call=call, changed=changed)


# The webhook's intake (telephony.intake) records, a worker applies -------------------------

# The contract's fields a recorded event keeps, unmasked, until a worker applies it.
_FIELDS_TO_APPLY = ("from_number", "to_number", "queue_slug", "agent_identity", "reason")


@functools.cache
def record_event_sql() -> str:
    """The intake's one statement: the call created if this is its first event, and the event
    inserted unless its webhook id is known, awaiting a worker (`apply_recorded_event`).
    Returns the new event's id; no row for a known webhook id. Parameters:
    `record_event_params`."""
    upsert, _, _ = _call_upsert()
    return f"""
        WITH call AS ({upsert})
        INSERT INTO {CallEvent._meta.db_table} (webhook_id, call_id, type, occurred_at,
            received_at, payload, applied, outcome, fields_to_apply)
        SELECT %(webhook_id)s, call.id, %(type)s, %(occurred_at)s, now(), %(payload)s::jsonb,
            false, '', %(fields_to_apply)s::jsonb
        FROM call
        ON CONFLICT (webhook_id) DO NOTHING
        RETURNING id
    """


def record_event_params(*, webhook_id: str, event: TelephonyEvent) -> dict[str, Any]:
    _, new_call, _ = _call_upsert()
    return {
        **new_call,
        "call_telephony_call_id": event.call_id,
        "webhook_id": webhook_id,
        "type": event.type,
        "occurred_at": event.occurred_at,
        "payload": json.dumps(mask_card_numbers_in(event.payload)),
        "fields_to_apply": json.dumps({name: getattr(event, name) for name in _FIELDS_TO_APPLY}),
    }


def _recorded_event(event_id: int) -> TelephonyEvent | None:
    """The recorded event, still to apply, as the webhook validated it."""
    row = (
        CallEvent.objects.filter(pk=event_id, fields_to_apply__isnull=False)
        .values_list("type", "occurred_at", "fields_to_apply", "call__telephony_call_id")
        .first()
    )
    if row is None:
        return None
    type_, occurred_at, fields, call_id = row
    return TelephonyEvent(
        type=type_,
        call_id=call_id,
        occurred_at=occurred_at,
        **{name: fields.get(name, "") for name in _FIELDS_TO_APPLY},
    )


def _mark_applied_and_save(*, event_id: int, call: Call, outcome: str, changed: set[str]) -> bool:
    """Mark the recorded event applied (or why not) unless it already was and, in the same
    statement, write the call's `changed` fields only when it was not; True when it was not."""
    marked = f"""
        UPDATE {CallEvent._meta.db_table}
        SET fields_to_apply = NULL, applied = %s, outcome = %s
        WHERE id = %s AND fields_to_apply IS NOT NULL
        RETURNING id
    """
    event_values = [not outcome, outcome[:200], event_id]
    return _event_written_and_call_saved(marked, event_values, call=call, changed=changed)


def _event_written_and_call_saved(
    event_statement: str, event_values: list, *, call: Call, changed: set[str]
) -> bool:
    """Run `event_statement` (it writes the event and returns its id only when the event was
    still to apply) and, in the same statement, write the call's `changed` fields only then;
    True when it was."""
    assignments, values = _call_assignments(call, changed)
    if assignments:
        sql = f"""
            WITH written AS ({event_statement}),
            saved AS (
                UPDATE {Call._meta.db_table} SET {assignments}
                WHERE id = %s AND EXISTS (SELECT FROM written)
            )
            SELECT id FROM written
        """
        params = [*event_values, *values, call.pk]
    else:
        sql, params = event_statement, event_values
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
    if call.last_event_at is not None and event.occurred_at < call.last_event_at:
        return None, "older than the call's latest applied event; its details were kept"
    if event.type == CallEventType.TRANSFERRED and not _known_agent(event.agent_identity):
        logger.warning(
            "call %r: transferred to unknown agent %r", event.call_id, event.agent_identity
        )
        return None, "transferred to an agent Rapport does not know; the call keeps its agent"
    if event.type == CallEventType.ENDED:
        target = _end_state(call, event.reason)
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
    if call.state in WAITING_STATES and call.connected_at is None and reason != "completed":
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
            call.queue = ringing.queue or _default_queue()
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
    call.last_event_at = event.occurred_at
    changed = {"state", "state_changed_at", "last_event_at"}
    if target == CallState.QUEUED:
        call.queued_at = now
        changed.add("queued_at")
    elif event.type == CallEventType.ENDED:
        call.ended_at = event.occurred_at
        call.end_reason = event.reason
        changed |= {"ended_at", "end_reason"}
    return changed


def _tell_router(call: Call, event: TelephonyEvent, *, agent_before: int | None) -> None:
    if call.state == CallState.QUEUED:
        router.call_arrived(call)
    elif event.type == CallEventType.ANSWERED:
        router.call_answered(call)
    elif event.type == CallEventType.TRANSFERRED:
        router.call_transferred(call, from_agent_id=agent_before)
    elif event.type == CallEventType.ENDED:
        router.call_ended(call)


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


def choose_queue(*, queue_slug: str, to_number: str) -> Queue:
    """The `queue` slug, else the queue the dialled number reaches, else the default queue.

    A call is never dropped: the default queue is created when it does not exist.
    """
    chosen = _one_row(Queue, _QUEUE_CHOSEN, _queue_wanted(queue_slug, to_number))
    return chosen or _default_queue()


_QUEUE_CHOSEN = """slug = ANY(%(slugs)s) OR numbers && %(dialled)s::varchar[]
    ORDER BY CASE
        WHEN %(wanted)s <> '' AND slug = %(wanted)s THEN 0
        WHEN numbers && %(dialled)s::varchar[] THEN 1
        ELSE 2
    END, id
    LIMIT 1"""


def _queue_wanted(queue_slug: str, to_number: str) -> dict[str, Any]:
    dialled = sorted(
        {number for number in (to_number, normalise_phone_number(to_number)) if number}
    )
    return {
        "slugs": [slug for slug in (queue_slug, settings.TELEPHONY_DEFAULT_QUEUE) if slug],
        "dialled": dialled,
        "wanted": queue_slug,
    }


def _default_queue() -> Queue:
    slug = settings.TELEPHONY_DEFAULT_QUEUE
    default, _ = Queue.objects.get_or_create(
        slug=slug, defaults={"name": slug.replace("-", " ").title()}
    )
    return default


def _one_row(model: type[Model], condition: str, params: dict[str, Any]) -> Any:
    """The first `model` row meeting `condition` (SQL after WHERE), or None: a plain SELECT
    for the webhook's lookups, whose ORM querysets cost more to build than to answer."""
    columns, attnames = _columns_of(model)
    with rows.prepared_cursor() as cursor:
        cursor.execute(f"SELECT {columns} FROM {model._meta.db_table} WHERE {condition}", params)
        row = cursor.fetchone()
    return None if row is None else model.from_db(connection.alias, attnames, row)


@functools.cache
def _columns_of(model: type[Model]) -> tuple[str, list[str]]:
    fields = model._meta.concrete_fields
    quote = connection.ops.quote_name
    return ", ".join(quote(f.column) for f in fields), [f.attname for f in fields]


def _known_agent(identity: str) -> bool:
    return bool(identity) and Agent.objects.filter(telephony_identity=identity).exists()


def _agent_with_identity(identity: str) -> Agent | None:
    if not identity:
        return None
    agent = _one_row(Agent, "telephony_identity = %(identity)s", {"identity": identity})
    if agent is None:
        logger.warning("telephony event names unknown agent %r", identity)
    return agent
