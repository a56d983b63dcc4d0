"""Calls the telephony system forgot: its hang-up never came (a PBX that does not retry, an event
lost on the way), so the call stays live and its agent busy for good. Rapport ends such a call
itself, with the end reason `lost`, through the path every end takes: a recorded `call.ended`
event applied by `telephony.applying.accept_event`, then the router's end (the agent goes to
wrap-up after a conversation, available when the caller was never connected).

- A supervisor frees an agent whose call the phone system forgot (`supervisor.services`
  `end_forgotten_call`): who did it and the reason they typed are kept on the event and on the
  agent's status change.
- The sweep, run by beat, ends a live call with no event and no state change for longer than
  `TELEPHONY_SILENT_CALL_SECONDS` (`end_silent_calls`), so nobody stays stuck overnight.

Each locks the call first and ends only a call still live (the sweep, only one still silent):
an end racing the phone system's own, another sweep or a supervisor changes nothing twice. An
event the phone system sends after such an end finds the call over and is kept, not applied.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef, QuerySet
from django.utils import timezone

from infrastructure.log_fields import call_fields
from routing import screens
from routing.models import Call
from routing.states import FINAL_STATES, CallState
from telephony.applying import accept_event
from telephony.events import LOST, TelephonyEvent
from telephony.models import CallEvent, CallEventType
from telephony.selectors import agents_rung_for

logger = logging.getLogger(__name__)

END_SILENT_CALLS = "telephony.end_silent_calls"

LIVE_STATES = sorted(set(CallState.values) - FINAL_STATES)
# What the agent's status change says when the sweep ended their call.
SILENT_CALL_STATUS_REASON = "call_lost"


def end_as_lost(
    call: Call, *, status_reason: str, ended_by: dict[str, Any], changed_by: Any = None
) -> None:
    """End `call` (locked by the caller, still live) now, as `lost`. `ended_by` is kept with
    the recorded event (who or what ended it, and why); `status_reason` and `changed_by` go on
    the agent's status change."""
    accept_event(
        webhook_id=f"rapport:{call.pk}:lost",
        event=TelephonyEvent(
            type=CallEventType.ENDED,
            call_id=call.telephony_call_id,
            occurred_at=timezone.now(),
            reason=LOST,
            payload={
                "type": CallEventType.ENDED,
                "call_id": call.telephony_call_id,
                "reason": LOST,
                "ended_by_rapport": ended_by,
            },
        ),
        status_reason=status_reason,
        changed_by=changed_by,
    )
    # A call the telephony system routes itself may still ring on agents' screens.
    rung = agents_rung_for(call)
    if rung:
        screens.stop_ringing(call=call, agent_ids=rung)


def silent_calls(*, now: datetime) -> QuerySet[Call]:
    """Live calls with no event received and no state change for longer than
    `TELEPHONY_SILENT_CALL_SECONDS`."""
    quiet_since = now - timedelta(seconds=settings.TELEPHONY_SILENT_CALL_SECONDS)
    heard_since = CallEvent.objects.filter(call=OuterRef("pk"), received_at__gt=quiet_since)
    return Call.objects.filter(state__in=LIVE_STATES, state_changed_at__lte=quiet_since).exclude(
        Exists(heard_since)
    )


def any_silent_call(*, now: datetime) -> bool:
    """Beat's question before it sends the sweep: one query over the few live calls."""
    return silent_calls(now=now).exists()


def end_silent_calls(*, limit: int = 200) -> int:
    """End, as `lost`, each live call the telephony system has gone silent on; how many."""
    ended = 0
    waiting = silent_calls(now=timezone.now()).order_by("id").values_list("id", flat=True)
    for call_id in list(waiting[:limit]):
        with transaction.atomic():
            # A call being worked on now (an event applied, routed) is not silent: skipped.
            call = (
                Call.objects.select_for_update(skip_locked=True, of=("self",))
                .filter(id=call_id)
                .first()
            )
            # Read again under the lock: an event recorded or a state change since, or an end,
            # keeps it from the sweep.
            if call is None or not silent_calls(now=timezone.now()).filter(id=call_id).exists():
                continue
            end_as_lost(
                call,
                status_reason=SILENT_CALL_STATUS_REASON,
                ended_by={
                    "sweep": "silent_call",
                    "silent_seconds": settings.TELEPHONY_SILENT_CALL_SECONDS,
                    "state": call.state,
                },
            )
        logger.warning(
            "call %r: nothing heard from the telephony system for over %g s while %s; ended"
            " as lost",
            call.telephony_call_id,
            settings.TELEPHONY_SILENT_CALL_SECONDS,
            call.state,
            extra=call_fields(call.telephony_call_id, call.agent_id),
        )
        ended += 1
    return ended
