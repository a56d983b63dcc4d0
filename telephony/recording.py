"""Recording an event: the one statement every telephony event goes through before anything is
applied. It creates the call if this is its first event and inserts the event once per webhook
id, with the validated fields its worker needs (`CallEvent.fields_to_apply`), so a recorded
event is durable and can be applied (`telephony.applying`) by whoever gets to it.

The webhook records on the server's event loop (`record_event_on_loop`, before its 202);
anything else records on Django's connection (`record_event`), in its own transaction.
"""

from __future__ import annotations

import functools
import json
from datetime import datetime
from typing import Any

from django.db import connection

from customers.card_numbers import mask_card_numbers_in
from infrastructure.database import on_loop, rows
from routing.models import Call
from telephony.events import FIELDS_TO_APPLY, TelephonyEvent
from telephony.models import CallEvent


def record_event(*, webhook_id: str, event: TelephonyEvent) -> int | None:
    """Record `event`: its new id, or None when `webhook_id` was already known."""
    with rows.prepared_cursor() as cursor:
        cursor.execute(_record_event_sql(), _record_event_params(webhook_id, event))
        recorded = cursor.fetchone()
    return None if recorded is None else recorded[0]


async def record_event_on_loop(*, webhook_id: str, event: TelephonyEvent) -> int | None:
    """`record_event` on the running event loop's own connections (the intake's lane),
    committed on return."""
    recorded = await on_loop.fetchone(
        _record_event_sql(), _record_event_params(webhook_id, event), lane=on_loop.WEBHOOK_INTAKE
    )
    return None if recorded is None else recorded[0]


def is_stored_as(*, webhook_id: str, event: TelephonyEvent) -> bool:
    """Whether the event already recorded under `webhook_id` is this one (a redelivery) rather
    than another event reusing its id; compared as stored: masked."""
    with rows.prepared_cursor() as cursor:
        cursor.execute(_STORED_AS_SQL, _stored_as_params(webhook_id, event))
        stored = cursor.fetchone()
    return _same_payload(stored)


async def is_stored_as_on_loop(*, webhook_id: str, event: TelephonyEvent) -> bool:
    """`is_stored_as` on the running event loop's own connections (the intake's lane)."""
    return _same_payload(
        await on_loop.fetchone(
            _STORED_AS_SQL, _stored_as_params(webhook_id, event), lane=on_loop.WEBHOOK_INTAKE
        )
    )


def recorded_event(event_id: int) -> tuple[TelephonyEvent, datetime] | None:
    """The recorded event, still to apply, as it was validated, and when it was recorded (the
    webhook's 202 followed); None once applied (or gone)."""
    row = (
        CallEvent.objects.filter(pk=event_id, fields_to_apply__isnull=False)
        .values_list(
            "type", "occurred_at", "fields_to_apply", "call__telephony_call_id", "received_at"
        )
        .first()
    )
    if row is None:
        return None
    type_, occurred_at, fields, call_id, received_at = row
    event = TelephonyEvent(
        type=type_,
        call_id=call_id,
        occurred_at=occurred_at,
        **{name: fields.get(name, "") for name in FIELDS_TO_APPLY},
    )
    return event, received_at


@functools.cache
def call_upsert(*, only_where: str = "") -> tuple[str, dict[str, Any], list[str]]:
    """The statement that creates a call on its first event or, as a no-op update, locks it
    and returns its row: its SQL, a new call's values as its parameters (every column without
    a database default, all constants, `call_telephony_call_id` to fill in), and the returned
    columns' attribute names. With `only_where` (SQL), it does either only where that holds.
    Built once."""
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
        SELECT {", ".join(f"%(call_{f.column})s" for f in fields)}
        {f"WHERE {only_where}" if only_where else ""}
        ON CONFLICT (telephony_call_id) DO UPDATE SET telephony_call_id = EXCLUDED.telephony_call_id
        RETURNING {", ".join(quote(f.column) for f in returned)}
    """
    return sql, defaults, [field.attname for field in returned]


@functools.cache
def _record_event_sql() -> str:
    # A webhook id already known creates no call: a reused id's other call_id would be left
    # ringing, with no event, for ever.
    upsert, _, _ = call_upsert(only_where=f"NOT EXISTS ({_KNOWN_WEBHOOK_ID_SQL})")
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


def _record_event_params(webhook_id: str, event: TelephonyEvent) -> dict[str, Any]:
    _, new_call, _ = call_upsert()
    return {
        **new_call,
        "call_telephony_call_id": event.call_id,
        "webhook_id": webhook_id,
        "type": event.type,
        "occurred_at": event.occurred_at,
        "payload": _stored_payload(event),
        "fields_to_apply": json.dumps(event.fields_to_apply()),
    }


_KNOWN_WEBHOOK_ID_SQL = f"SELECT FROM {CallEvent._meta.db_table} WHERE webhook_id = %(webhook_id)s"

# Compared by PostgreSQL, as jsonb: what this delivery would store against what is stored, so
# numbers compare as the numbers stored (1.1e30 read back is no float equal to Python's).
_STORED_AS_SQL = f"""
    SELECT payload = %(payload)s::jsonb FROM {CallEvent._meta.db_table}
    WHERE webhook_id = %(webhook_id)s
"""


def _stored_as_params(webhook_id: str, event: TelephonyEvent) -> dict[str, Any]:
    return {"webhook_id": webhook_id, "payload": _stored_payload(event)}


def _stored_payload(event: TelephonyEvent) -> str:
    return json.dumps(mask_card_numbers_in(event.payload))


def _same_payload(stored: tuple[Any, ...] | None) -> bool:
    return stored is not None and stored[0] is True
