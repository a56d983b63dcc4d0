"""Events of a call back's try under the phone system's own call id (docs/telephony.md, "Call
backs"): a phone system of our own format places the call Rapport asked for (`call.dial`) and
reports it with the usual events, a `call_id` of its choosing and `metadata.callback_id`.

The first such event claims the try of that call back an agent accepted and that is still open
(`PlacedCall`), whatever its type; from then on every event under that call id, in any order,
repeated or late, is recorded and applied as the try's, exactly as under Rapport's own id
(`callback-{id}-{try}`, which a phone system may use instead). One statement, run only for an
event that names a call back. An event naming a call back with no try to claim is refused with
400 naming `metadata.callback_id` (nothing is recorded): a call Rapport never asked to place is
not taken for a plain call, which would be queued and offered to agents.
"""

from __future__ import annotations

from dataclasses import replace

from rest_framework import exceptions

from infrastructure.database import on_loop, rows
from routing.models import Call
from routing.states import FINAL_STATES
from telephony.events import TelephonyEvent
from telephony.models import PlacedCall

FIELD = "metadata.callback_id"

_CALL = Call._meta.db_table
_PLACED = PlacedCall._meta.db_table

# Known: this call id was claimed (or is the try's own). Else the open try of the call back is
# claimed for it, once: a second claim at the same moment conflicts and finds nothing, and is
# run again (then the first claim is known).
_TRY_SQL = f"""
    WITH known AS (
        SELECT c.telephony_call_id FROM {_PLACED} p JOIN {_CALL} c ON c.id = p.call_id
        WHERE p.placed_call_id = %(call_id)s
        UNION ALL
        SELECT c.telephony_call_id FROM {_CALL} c
        WHERE c.telephony_call_id = %(call_id)s AND c.callback_id = %(callback_id)s
    ),
    open_try AS (
        SELECT c.id, c.telephony_call_id FROM {_CALL} c
        WHERE c.callback_id = %(callback_id)s AND c.agent_id IS NOT NULL
            AND NOT (c.state = ANY(%(final_states)s))
            AND NOT EXISTS (SELECT FROM {_PLACED} p WHERE p.call_id = c.id)
            AND NOT EXISTS (SELECT FROM known)
        ORDER BY c.id DESC
        LIMIT 1
    ),
    claimed AS (
        INSERT INTO {_PLACED} (call_id, placed_call_id)
        SELECT id, %(call_id)s FROM open_try
        ON CONFLICT DO NOTHING
        RETURNING call_id
    )
    SELECT telephony_call_id FROM known
    UNION ALL
    SELECT o.telephony_call_id FROM open_try o JOIN claimed ON claimed.call_id = o.id
    LIMIT 1
"""


def callback_id_of(event: TelephonyEvent) -> int | None:
    """The call back the event's `metadata.callback_id` names, or None when it names none."""
    metadata = event.payload.get("metadata")
    if not isinstance(metadata, dict) or metadata.get("callback_id") is None:
        return None
    value = metadata["callback_id"]
    if isinstance(value, bool) or not (
        isinstance(value, int) or (isinstance(value, str) and value.isdigit() and len(value) < 19)
    ):
        raise exceptions.ValidationError({FIELD: ["Expected the id of the call.dial's call back."]})
    value = int(value)
    if not 0 < value < 2**63:
        raise exceptions.ValidationError({FIELD: ["Expected the id of the call.dial's call back."]})
    return value


def _params(event: TelephonyEvent, callback_id: int) -> dict:
    return {
        "call_id": event.call_id,
        "callback_id": callback_id,
        "final_states": sorted(FINAL_STATES),
    }


def _as_try(event: TelephonyEvent, row, callback_id: int) -> TelephonyEvent:
    if row is None:
        raise exceptions.ValidationError(
            {
                FIELD: [
                    f"No try of call back {callback_id} is being placed: Rapport did not ask"
                    " for this call (call.dial), or it is over."
                ]
            }
        )
    return replace(event, call_id=row[0])


def as_placed_try(event: TelephonyEvent) -> TelephonyEvent:
    """The event as its call back's try's, when it names one (see the module)."""
    callback_id = callback_id_of(event)
    if callback_id is None:
        return event
    params = _params(event, callback_id)
    with rows.prepared_cursor() as cursor:
        cursor.execute(_TRY_SQL, params)
        row = cursor.fetchone()
        if row is None:
            cursor.execute(_TRY_SQL, params)
            row = cursor.fetchone()
    return _as_try(event, row, callback_id)


async def as_placed_try_on_loop(event: TelephonyEvent) -> TelephonyEvent:
    """`as_placed_try` on the running event loop's own connections (the intake's lane)."""
    callback_id = callback_id_of(event)
    if callback_id is None:
        return event
    params = _params(event, callback_id)
    row = await on_loop.fetchone(_TRY_SQL, params, lane=on_loop.WEBHOOK_INTAKE)
    if row is None:
        row = await on_loop.fetchone(_TRY_SQL, params, lane=on_loop.WEBHOOK_INTAKE)
    return _as_try(event, row, callback_id)
