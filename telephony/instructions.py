"""What the console can tell the phone system about a connected call, and which phone system a
call came through (docs/telephony.md, "Instructions from the console").

- Twilio (a `TwilioCall` row): Rapport bridges the caller itself, so a transfer and a hang-up
  are REST updates of the live call (telephony.twilio.calls). A `<Dial>` bridge has no hold:
  holding the caller would drop the agent's leg, so hold is not offered.
- Generic CTI (its events' ids start `cti:`): the PBX takes no instructions. A transfer's note
  still goes ahead to the colleague; the agent transfers on their phone.
- Our own format with `TELEPHONY_CONTROL_URL`: signed instructions pushed like `call.connect`
  (`call.transfer`, `call.hangup`, `call.hold`, `call.resume`), retried until a 2xx or the
  call ends. Without a control URL the phone system only pulls: as Generic CTI.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings

from infrastructure import dispatch
from infrastructure.errors import Forbidden, Refused
from routing.models import Call, RoutingDecision
from routing.states import TALKING_STATES, CallState
from telephony.models import CallEvent, TwilioCall

CONNECT = "call.connect"
# A call back to place, once an agent accepted it (telephony.callbacks).
DIAL = "call.dial"
TRANSFER = "call.transfer"
HANG_UP = "call.hangup"
HOLD = "call.hold"
RESUME = "call.resume"

# How a call's phone system is told: Twilio's REST API, a signed push, or not at all (the agent
# does it on their phone).
TWILIO = "twilio"
PUSH = "push"
PHONE = "phone"

PUSH_CALL_INSTRUCTION = "telephony.push_call_instruction"
TWILIO_TRANSFER = "telephony.twilio_transfer"
TWILIO_HANG_UP = "telephony.twilio_hang_up"

# The console's message types, and the instruction each is.
CONSOLE_ACTIONS = {"hangup": HANG_UP, "hold": HOLD, "resume": RESUME}


def phone_system_of(call: Call) -> str:
    if TwilioCall.objects.filter(call_id=call.pk).exists():
        return TWILIO
    if CallEvent.objects.filter(call_id=call.pk, webhook_id__startswith="cti:").exists():
        return PHONE
    return PUSH if settings.TELEPHONY_CONTROL_URL else PHONE


def controls_for(call: Call) -> dict[str, Any]:
    """What the console shows for `call`: how a transfer is made (`twilio`, `push`, or `phone`:
    by the agent on their phone, the note sent ahead), and whether hang-up and hold are offered."""
    return _controls(phone_system_of(call))


def _controls(how: str) -> dict[str, Any]:
    return {"transfer": how, "hangup": how != PHONE, "hold": how == PUSH}


def request_transfer(call: Call, decision: RoutingDecision | None) -> str:
    """The colleague accepted the hand-off `decision` made: tell the phone system to move the
    caller (after commit, with retries). Returns how it is told."""
    how = phone_system_of(call)
    if decision is None or how == PHONE:
        return how
    if how == TWILIO:
        dispatch.publish_on_commit(TWILIO_TRANSFER, call.pk, decision.pk)
    else:
        dispatch.publish_on_commit(PUSH_CALL_INSTRUCTION, call.pk, TRANSFER, decision.pk)
    return how


def request_call_control(*, agent_id: int, telephony_call_id: str, action: str) -> None:
    """The agent on `telephony_call_id` asks to hang up, hold or resume it (`action`, a key of
    CONSOLE_ACTIONS). Refused, naming the field, when the call is not theirs and talking, or
    its phone system cannot be told; the call changes when the phone system reports it did."""
    call = Call.objects.filter(telephony_call_id=telephony_call_id).first()
    if call is None or call.agent_id != agent_id or call.state not in TALKING_STATES:
        raise Forbidden("This call is not connected with you.", field="call_id")
    if action == "resume" and call.state != CallState.HELD:
        raise Refused("The call is not on hold.", field="type")
    if action == "hold" and call.state == CallState.HELD:
        raise Refused("The call is on hold already.", field="type")
    how = phone_system_of(call)
    if not _controls(how)["hangup" if action == "hangup" else "hold"]:
        raise Refused(
            "Your phone system cannot be told that from here: use your phone.", field="type"
        )
    if how == TWILIO:
        dispatch.publish_on_commit(TWILIO_HANG_UP, call.pk)
    else:
        dispatch.publish_on_commit(PUSH_CALL_INSTRUCTION, call.pk, CONSOLE_ACTIONS[action], None)
