"""The caller's own choice while held for their busy last agent (docs/telephony.md, "The caller's
choice"): keep waiting for them, the next colleague, or a call back (routing.callbacks).

The rule, stated once:

- a caller is asked only while held for their busy last agent, once per call, and only when their
  hold tolerance is unknown (a caller fine on hold is not asked again); a caller who avoids
  holding is offered only the next colleague and a call back;
- the answer is the caller's own hold preference, said by the caller (with its date), so the
  router's hold rule (routing.policy.hold_rule) follows it next time;
- waiting: the hold runs again for the full window, and the last agent's waiting line says the
  caller chose to wait for them; the next colleague: the call falls back to the queue now,
  by a routing decision like any other fallback.

Each function takes a telephony call id, locks the call, and does nothing to a call that is no
longer held (answered, offered, ended meanwhile) besides recording what the caller said.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from customers import services as customer_services
from customers.models import Customer, HoldTolerance, Provenance
from infrastructure import broadcast
from routing import calls, decisions, handoff, policy, screens
from routing.models import Call, CallerChoice, DecisionReason
from routing.states import CallState

# The keys a held caller may press, and what each means.
KEEP_WAITING = "1"
NEXT_COLLEAGUE = "2"
CALL_BACK = "3"
CHOICE_OF_KEY = {
    KEEP_WAITING: CallerChoice.WAIT,
    NEXT_COLLEAGUE: CallerChoice.NEXT_COLLEAGUE,
    CALL_BACK: CallerChoice.CALLBACK,
}


@dataclass(frozen=True)
class Question:
    """What a held caller is asked: the keys offered, and the last agent's first name when the
    caller is identified (never on a shared line, where we do not know who is calling)."""

    keys: tuple[str, ...]
    agent_first_name: str | None


def question_for_held_caller(*, telephony_call_id: str) -> Question | None:
    """The question to ask the caller now, or None (not held for their last agent, asked
    already, or fine on hold). Marks the call asked, so one round of the wait asks, once: a
    conditional update, so the wait loop, asked every few seconds, takes no lock on the call."""
    held_unasked = Call.objects.filter(
        telephony_call_id=telephony_call_id,
        state=CallState.QUEUED,
        last_agent_wait_until__isnull=False,
        caller_asked_at__isnull=True,
    )
    call = held_unasked.select_related("customer", "last_agent").first()
    if call is None:
        return None
    keys = keys_offered(call.customer)
    if not keys or not held_unasked.update(caller_asked_at=timezone.now()):
        return None
    name = None
    if call.customer is not None and call.last_agent is not None:
        name = call.last_agent.display_name.split()[0]
    return Question(keys=keys, agent_first_name=name)


def keys_offered(customer: Customer | None) -> tuple[str, ...]:
    """The keys a held caller is offered, by their hold tolerance: none when fine on hold."""
    tolerance = customer.hold_tolerance if customer is not None else HoldTolerance.UNKNOWN
    if tolerance == HoldTolerance.FINE:
        return ()
    if tolerance == HoldTolerance.AVOID:
        return (NEXT_COLLEAGUE, CALL_BACK)
    return (KEEP_WAITING, NEXT_COLLEAGUE, CALL_BACK)


def _lock_asked_call(telephony_call_id: str) -> Call | None:
    return (
        Call.objects.select_for_update(of=("self",))
        .select_related("customer", "queue")
        .filter(telephony_call_id=telephony_call_id, caller_asked_at__isnull=False)
        .first()
    )


def _record_choice(call: Call, choice: str, *, now) -> None:
    call.caller_choice = choice
    call.caller_choice_at = now
    call.save(update_fields=["caller_choice", "caller_choice_at"])
    tolerance = {
        CallerChoice.WAIT: HoldTolerance.FINE,
        CallerChoice.NEXT_COLLEAGUE: HoldTolerance.AVOID,
    }.get(choice)
    if call.customer is not None and tolerance is not None and call.customer.erased_at is None:
        customer_services.record_preference(
            customer=call.customer,
            preference="hold_tolerance",
            value=tolerance,
            source=Provenance.SAID_ON_KEYPAD,
            set_by=None,
        )


def caller_chose_to_wait(*, telephony_call_id: str) -> bool:
    """The caller keeps waiting for their last agent: fine on hold, said by the caller; the
    hold runs again for the queue's full window; the agent's waiting line says they chose it.
    False: the call was never asked, or is no longer held."""
    with transaction.atomic():
        call = _lock_asked_call(telephony_call_id)
        if call is None or call.caller_choice or KEEP_WAITING not in keys_offered(call.customer):
            return False
        now = timezone.now()
        _record_choice(call, CallerChoice.WAIT, now=now)
        if call.state != CallState.QUEUED or call.last_agent_wait_until is None:
            return True
        hold = policy.hold_rule(customer=call.customer, queue=call.queue)
        call.last_agent_wait_until = max(
            call.last_agent_wait_until, now + timedelta(seconds=hold.wait_limit_seconds)
        )
        call.save(update_fields=["last_agent_wait_until"])
        screens.show_caller_waiting(call=call, agent_id=call.last_agent_id)
        broadcast.notify_supervisors(queue_id=call.queue_id)
        return True


def caller_chose_next_colleague(*, telephony_call_id: str) -> bool:
    """The caller wants the next colleague: avoids holding, said by the caller; the call stops
    waiting for the last agent and is routed to the queue at once."""
    with transaction.atomic():
        call = _lock_asked_call(telephony_call_id)
        if call is None or call.caller_choice:
            return False
        now = timezone.now()
        _record_choice(call, CallerChoice.NEXT_COLLEAGUE, now=now)
        if call.state != CallState.QUEUED or call.last_agent_wait_until is None:
            return True
        decisions.record_decision(
            call=call, reason=DecisionReason.CALLER_CHOSE_NEXT, agent_id=call.last_agent_id, now=now
        )
        screens.stop_waiting_for_last_agent(call, why="caller_chose_next")
        calls.save_call(call)
        handoff.request_routing(call_id=call.id)
        broadcast.notify_supervisors(queue_id=call.queue_id)
        return True


def record_callback_choice(call: Call, *, now) -> None:
    """`call` (locked) ends because its caller asked for a call back (routing.callbacks)."""
    _record_choice(call, CallerChoice.CALLBACK, now=now)
