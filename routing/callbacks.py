"""Call backs that keep the caller's place (docs/telephony.md, "Call backs").

A caller held for their last agent may ask to be called back (a key on Twilio, the event
`call.callback_requested` from any phone system): their call ends as "callback requested", not
abandoned, and a `Callback` opens. Each try at calling them is a Call of its own
(`Call.callback`), queued at the caller's original place, so the router takes it by the same
rules as any call: offered to their last agent first (the wait window, the hold rule, the
fallback to the queue), with the caller's card as consent allows. Once an agent accepts it the
phone system places the call (telephony.callbacks).

A try nobody answered is tried again after the queue's `callback_retry_seconds`, up to its
`callback_attempts`; then the call back is "not reached" and on the supervisor's list. A caller
who rings in again while their call back waits is matched to it: one call, at the original place,
and the call back is closed.

Lock order: the call before its Callback row.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from infrastructure import broadcast
from routing import caller_choice, calls, handoff, offers, screens
from routing.models import (
    PENDING_CALLBACK_STATES,
    Call,
    Callback,
    CallbackState,
)
from routing.states import CallState

logger = logging.getLogger(__name__)

# A try that left the queue because the caller rang in again (the call back is that call).
CALLER_RANG_AGAIN = "caller_rang_again"
# A try that left the queue because an earlier try's answer came late: it had reached them.
REACHED_ALREADY = "reached_already"
# A try that left the queue because its customer was erased.
ERASED = "erased"


def attempt_call_id(callback: Callback) -> str:
    """The id of a try until the phone system names the call it placed."""
    return f"callback-{callback.pk}-{callback.attempts}"


def open_callback(call: Call, *, agent_dials: bool = False) -> Callback | None:
    """`call` (locked) has just ended because its caller asked to be called back: the call back
    waits in the queue at the caller's place. One per number and queue: a second request while
    one waits is the same call back."""
    now = timezone.now()
    caller_choice.record_callback_choice(call, now=now)
    return _open(call, agent_dials=agent_dials, now=now)


def callback_for_message(call: Call, *, agent_dials: bool = False) -> Callback | None:
    """The call back a message left on `call` (locked, over) belongs to: the one the caller
    asked for on it, or their number's waiting in the queue; else one opens, as when they ask
    (routing.voicemails)."""
    asked = Callback.objects.filter(requested_on=call).first()
    if asked is not None:
        return asked
    now = timezone.now()
    matched = _matched_by(call)
    if matched is not None:
        # The caller rang again while their call back waited, so this call was to be it; nobody
        # could answer and they left a message instead: the call back waits again, same place.
        matched.finished_at = None
        matched.save(update_fields=["finished_at"])
        _queue_attempt(matched, now=now)
        broadcast.notify_supervisors(queue_id=matched.queue_id)
        return matched
    return _open(call, agent_dials=agent_dials, now=now)


def _matched_by(call: Call) -> Callback | None:
    """The call back `call` was matched to when it reached the queue (closed then, at or after
    the call came in), unless another is pending for the number since."""
    if call.queue_id is None or not call.from_e164:
        return None
    if pending_callback(queue_id=call.queue_id, number=call.from_e164) is not None:
        return None
    return (
        Callback.objects.select_for_update()
        .filter(
            queue_id=call.queue_id,
            number=call.from_e164,
            state=CallbackState.MATCHED,
            finished_at__gte=call.created_at,
        )
        .order_by("-finished_at")
        .first()
    )


def _open(call: Call, *, agent_dials: bool, now) -> Callback | None:
    if call.queue_id is None or not call.from_e164:
        logger.warning("call %r: call back asked, but no queue or number", call.telephony_call_id)
        return None
    pending = pending_callback(queue_id=call.queue_id, number=call.from_e164)
    if pending is not None:
        return pending
    try:
        with transaction.atomic():
            callback = Callback.objects.create(
                requested_on=call,
                customer_id=call.customer_id,
                queue_id=call.queue_id,
                number=call.from_e164,
                from_number=call.to_number,
                place=call.queued_at or call.created_at,
                agent_dials=agent_dials,
            )
    except IntegrityError:
        # The same number asked on another call at the same moment: theirs is the call back.
        return pending_callback(queue_id=call.queue_id, number=call.from_e164)
    _queue_attempt(callback, now=now, shared_line_of=call)
    broadcast.notify_supervisors(queue_id=call.queue_id)
    return callback


def pending_callback(*, queue_id: int, number: str) -> Callback | None:
    return Callback.objects.filter(
        queue_id=queue_id, number=number, state__in=PENDING_CALLBACK_STATES
    ).first()


def _queue_attempt(callback: Callback, *, now, shared_line_of: Call | None = None) -> Call:
    """The next try: a call in the queue at the caller's original place, routed at once."""
    callback.attempts += 1
    callback.state = CallbackState.WAITING
    callback.next_attempt_at = None
    callback.save(update_fields=["attempts", "state", "next_attempt_at"])
    attempt = Call.objects.create(
        telephony_call_id=attempt_call_id(callback),
        from_number=callback.number,
        from_e164=callback.number,
        to_number=callback.from_number,
        queue_id=callback.queue_id,
        customer_id=callback.customer_id,
        callback=callback,
        state=CallState.QUEUED,
        ringing_at=now,
        queued_at=callback.place,
    )
    if shared_line_of is not None and shared_line_of.customer_id is None:
        # A shared line: who will answer is for the agent to ask, as on the first call.
        attempt.candidates.set(shared_line_of.candidates.all())
    handoff.request_routing(call_id=attempt.id)
    return attempt


def attempt_ended(call: Call) -> None:
    """A try at calling back (`call`, locked) ended: reached when an agent talked to the
    customer; otherwise tried again later, or, its tries spent, not reached."""
    callback = Callback.objects.select_for_update().select_related("queue").get(pk=call.callback_id)
    if callback.state not in PENDING_CALLBACK_STATES:
        return
    now = timezone.now()
    if call.connected_at is not None:
        callback.state = CallbackState.REACHED
        callback.finished_at = now
    elif callback.attempts >= callback.queue.callback_attempts:
        callback.state = CallbackState.NOT_REACHED
        callback.finished_at = now
        logger.info("call back %s: not reached after %d tries", callback.pk, callback.attempts)
    else:
        callback.state = CallbackState.WAITING
        callback.next_attempt_at = now + timedelta(seconds=callback.queue.callback_retry_seconds)
    callback.save(update_fields=["state", "finished_at", "next_attempt_at"])
    broadcast.notify_supervisors(queue_id=callback.queue_id)


def attempt_answered_after_it_ended(call: Call) -> None:
    """The answer of the try `call` (locked) arrived after its end, stamped before it: the
    customer was reached after all. A call back that was to be tried again, or not reached,
    is reached; a next try waiting in the queue leaves it."""
    tries = _waiting_tries_for_update(Q(callback_id=call.callback_id))
    callback = Callback.objects.select_for_update().get(pk=call.callback_id)
    if callback.state not in (CallbackState.WAITING, CallbackState.NOT_REACHED):
        return
    now = timezone.now()
    _end_waiting_tries(tries, why=REACHED_ALREADY, now=now)
    callback.state = CallbackState.REACHED
    callback.finished_at = now
    callback.next_attempt_at = None
    callback.save(update_fields=["state", "finished_at", "next_attempt_at"])
    broadcast.notify_supervisors(queue_id=callback.queue_id)


def placing(call: Call) -> None:
    """An agent accepted the try `call`: the phone system is placing it."""
    Callback.objects.filter(pk=call.callback_id, state=CallbackState.WAITING).update(
        state=CallbackState.DIALLING
    )


def retry_due_callbacks(*, now) -> int:
    """The router's sweep: queue the next try of each call back whose wait is over."""
    due = Callback.objects.filter(next_attempt_at__lte=now, state=CallbackState.WAITING)
    tried = 0
    for callback_id in list(due.values_list("id", flat=True)[:200]):
        with transaction.atomic():
            callback = (
                Callback.objects.select_for_update(skip_locked=True)
                .filter(pk=callback_id, next_attempt_at__lte=now, state=CallbackState.WAITING)
                .first()
            )
            if callback is not None:
                _queue_attempt(callback, now=now)
                tried += 1
    return tried


def match_caller_ringing_again(call: Call) -> Callback | None:
    """`call` (locked) has just reached the queue: when its caller's call back waits, this call
    is it. The call takes the original place, the waiting try leaves the queue, and the call
    back is closed (one call, not two)."""
    if call.state != CallState.QUEUED or call.queue_id is None or not call.from_e164:
        return None
    # The try waiting in the queue, locked before its call back (the module's lock order).
    tries = _waiting_tries_for_update(
        Q(callback__queue_id=call.queue_id, callback__number=call.from_e164)
    )
    callback = (
        Callback.objects.select_for_update()
        .filter(queue_id=call.queue_id, number=call.from_e164, state=CallbackState.WAITING)
        .first()
    )
    if callback is None:
        return None
    now = timezone.now()
    call.queued_at = min(call.queued_at or now, callback.place)
    call.save(update_fields=["queued_at"])
    callback.state = CallbackState.MATCHED
    callback.finished_at = now
    callback.next_attempt_at = None
    callback.save(update_fields=["state", "finished_at", "next_attempt_at"])
    _end_waiting_tries(tries, why=CALLER_RANG_AGAIN, now=now)
    logger.info("call %r: matched to the waiting call back %s", call.telephony_call_id, callback.pk)
    return callback


def _waiting_tries_for_update(callbacks_wanted: Q) -> list[Call]:
    """The tries of the pending call backs `callbacks_wanted` still in the queue (nobody has
    accepted them), locked in id order."""
    return list(
        Call.objects.select_for_update()
        .filter(callbacks_wanted, callback__state=CallbackState.WAITING)
        .filter(state__in=[CallState.QUEUED, CallState.OFFERED], agent__isnull=True)
        .order_by("id")
    )


def _end_waiting_tries(tries: list[Call], *, why: str, now) -> None:
    """Tries (locked) leave the queue: their offers withdrawn, their waiting lines gone."""
    for waiting_try in tries:
        withdrawn = offers.withdraw_offers_of_call(call=waiting_try, now=now)
        for agent_id in withdrawn.freed:
            handoff.request_offer_for_agent(agent_id=agent_id)
        calls.move_call(waiting_try, CallState.ENDED, now=now)
        waiting_try.ended_at = now
        waiting_try.end_reason = why
        screens.stop_waiting_for_last_agent(waiting_try, why="ended")
        waiting_try.save(
            update_fields=[
                "state",
                "state_changed_at",
                "ended_at",
                "end_reason",
                "last_agent_wait_until",
            ]
        )


def erase_callbacks(*, customer_id: int, numbers: list[str]) -> int:
    """The customer is erased (privacy.services): their call backs go, pending or done (each
    holds their number), and a try waiting in the queue leaves it. A try being placed goes on
    as the call it is, without its call back. Returns how many call backs went."""
    theirs = Q(customer_id=customer_id) | Q(number__in=numbers, customer__isnull=True)
    tries = _waiting_tries_for_update(
        Q(callback__customer_id=customer_id)
        | Q(callback__number__in=numbers, callback__customer__isnull=True)
    )
    _end_waiting_tries(tries, why=ERASED, now=timezone.now())
    queue_ids = set(Callback.objects.filter(theirs).values_list("queue_id", flat=True))
    deleted, _ = Callback.objects.filter(theirs).delete()
    for queue_id in queue_ids:
        broadcast.notify_supervisors(queue_id=queue_id)
    return deleted
