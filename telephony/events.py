"""The canonical call event: what every telephony format is turned into before Rapport applies
it to a call (docs/telephony.md, "Events")."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

END_REASONS = ("completed", "abandoned", "busy", "failed", "no-answer")
# Rapport's own end reason, never sent by a phone system: the call was ended because the phone
# system forgot it (its hang-up never came), by a supervisor or the sweep (telephony.lost_calls).
LOST = "lost"
# Rapport's end reason for a caller who asked to be called back (`call.callback_requested`).
CALLBACK_REQUESTED = "callback_requested"
# Rapport's end reason for a caller who heard that nobody could answer and was asked to leave a
# message (routing.voicemails): not abandoned, they were let go.
VOICEMAIL = "voicemail"

# How far ahead of Rapport's clock an event may say it happened, as much as the signature's
# timestamp may differ from it. Later than that is a clock gone wrong: it would sort after
# every true event of the call, and the call would take none of them.
MAX_AHEAD_OF_CLOCK = timedelta(minutes=5)

# What a recorded event keeps, unmasked, until it is applied (`CallEvent.fields_to_apply`).
FIELDS_TO_APPLY = ("from_number", "to_number", "queue_slug", "agent_identity", "reason")


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

    def fields_to_apply(self) -> dict[str, str]:
        return {name: getattr(self, name) for name in FIELDS_TO_APPLY}


@dataclass(frozen=True)
class EventReceipt:
    """What became of an event: already known (`duplicate`), or applied to its call (moved it
    along its state machine) or only recorded with why not."""

    duplicate: bool
    applied: bool = False
