"""Wrap-up codes: the outcome an agent chooses for a call (a queue's short list, a digit key
each), and the rule that a queue may require one before Ready. The socket, the REST API and the
status a person chooses all come here, so they cannot disagree.

- `choose_code`: only the agent who sees the call as theirs (on it, or wrapping it up:
  `policy.why_agent_sees_call`) chooses its code, one of its queue's active codes.
- `check_ready`: Ready (available from wrap-up) waits for a code where the queue requires one.
  Going on a break or offline does not: an agent may always step away; the call then has none.
  Nor do a supervisor making the agent available (audited with their reason) and the queue's
  wrap-up limit running out: neither is the agent saying they are done.
- The chosen code's label is kept on the call and on the call's notes (`CallNote.wrap_up_label`)
  so the history shows it beside the note without reading calls.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models import Q

from customers.models import CallNote
from infrastructure import broadcast
from infrastructure.errors import Forbidden, Invalid, NotFound
from routing import policy
from routing.models import DEFAULT_WRAP_UP_CODES, Agent, Call, Queue, WrapUpCode
from routing.states import AgentStatus

CODE_REQUIRED = "Choose a wrap-up code before Ready."


def give_default_codes(queue: Queue) -> list[WrapUpCode]:
    """A new queue's codes: the defaults, where it has none yet."""
    if queue.wrap_up_codes.exists():
        return list(queue.wrap_up_codes.all())
    return WrapUpCode.objects.bulk_create(
        [
            WrapUpCode(queue=queue, label=label, key=key, promises_call_back=promises)
            for label, key, promises in DEFAULT_WRAP_UP_CODES
        ]
    )


def codes_by_queue() -> dict[int, dict[str, Any]]:
    """Every queue's active codes in key order and whether one is required, by queue id: what
    the console's wrap-up panel offers. Two queries."""
    queues = {
        queue_id: {"required": required, "codes": []}
        for queue_id, required in Queue.objects.values_list("id", "wrap_up_code_required")
    }
    for code in WrapUpCode.objects.filter(active=True).order_by("queue_id", "key"):
        if code.queue_id in queues:
            queues[code.queue_id]["codes"].append(code_data(code))
    return queues


def code_data(code: WrapUpCode) -> dict[str, Any]:
    return {
        "id": code.id,
        "key": code.key,
        "label": code.label,
        "promises_call_back": code.promises_call_back,
    }


def code_message(call: Call) -> dict[str, Any]:
    """What the agent's screen hears once a code is chosen (docs/sockets.md)."""
    return {
        "type": "wrap_up_code",
        "call_id": call.telephony_call_id,
        "code": call.wrap_up_code_id,
        "label": call.wrap_up_label,
    }


@transaction.atomic
def choose_code(*, agent_id: int, telephony_call_id: Any, code_id: Any) -> Call:
    """The agent on `telephony_call_id`, or wrapping it up, says how it ended: one of its
    queue's active codes (choosing again replaces the choice). The call's notes carry the label
    from now on; the agent's screen hears of it."""
    if isinstance(code_id, bool) or not isinstance(code_id, int):
        raise Invalid("wrap_up_code must be a code's id.", field="wrap_up_code")
    if not isinstance(telephony_call_id, str) or not telephony_call_id:
        raise Invalid("call_id must be the call's id.", field="call_id")
    agent = Agent.objects.only(*policy.AGENT_FIELDS_SEEING_CALLS).get(id=agent_id)
    call = (
        Call.objects.select_for_update(of=("self",))
        .filter(telephony_call_id=telephony_call_id)
        .first()
    )
    if call is None:
        raise NotFound("No such call.", field="call_id")
    seen = policy.why_agent_sees_call(agent=agent, among=Q(id=call.id))
    if seen is None or seen[0] != "call":
        raise Forbidden("This call is not yours to code.", field="call_id")
    code = WrapUpCode.objects.filter(id=code_id, active=True).first()
    if code is None or code.queue_id != call.queue_id:
        raise Invalid("That is not one of this call's queue's wrap-up codes.", field="wrap_up_code")
    call.wrap_up_code = code
    call.wrap_up_label = code.label
    call.call_back_promised = code.promises_call_back
    call.save(update_fields=["wrap_up_code", "wrap_up_label", "call_back_promised"])
    CallNote.objects.filter(call_id=call.id).update(wrap_up_label=code.label)
    broadcast.send_to_agent(agent.id, code_message(call))
    broadcast.notify_supervisors(queue_id=call.queue_id)
    return call


def label_note(note: CallNote) -> CallNote:
    """A note just written on a call, in the same transaction, takes the call's code if one is
    chosen already (`choose_code` labels the notes written before). The call's lock is taken
    after the customer's (the order an erase takes them in), and a code being chosen at the
    same moment is waited for, so the note cannot miss it."""
    if note.call_id is None:
        return note
    label = (
        Call.objects.select_for_update()
        .filter(id=note.call_id)
        .values_list("wrap_up_label", flat=True)
        .first()
    )
    if label:
        CallNote.objects.filter(id=note.id).update(wrap_up_label=label)
        note.wrap_up_label = label
    return note


def check_ready(agent: Agent) -> None:
    """An agent (locked) in wrap-up may be Ready only once the call they wrap up has a code,
    where its queue requires one (Invalid naming `wrap_up_code` otherwise)."""
    if agent.status != AgentStatus.WRAP_UP or agent.wrap_up_call_id is None:
        return
    missing = Call.objects.filter(
        id=agent.wrap_up_call_id, queue__wrap_up_code_required=True, wrap_up_label=""
    ).exists()
    if missing:
        raise Invalid(CODE_REQUIRED, field="wrap_up_code")
