"""What Twilio's requests mean for a call (docs/telephony.md, "Twilio").

Twilio's requests become the same call events as any telephony system's, through
`telephony.applying.accept_event`: the incoming call rings, the agent's leg answered is the call
answered (by another agent than the call's: transferred), the number's final status ends it.
So Twilio's retries and its callbacks' order are handled where every event's are: once per
event id, and never moving a call backwards. Twilio's own ids make the event ids:
`twilio:{CallSid}:{what}`.

What Twilio adds is that Rapport itself bridges the caller: the caller waits in `<Enqueue>`, and
once an agent accepts, Rapport dials them, by a REST update of the live call, or, when that
cannot be delivered, by answering the wait loop `<Leave/>` and the enqueue action `<Dial>`. The
`TwilioCall` row, locked, says which accepted decision was dialled, so only one of the two
paths dials an agent. Lock order: the TwilioCall row before the call's.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from infrastructure.log_fields import call_fields
from routing import offers, voicemails
from routing.models import Agent, Call, RoutingDecision
from routing.states import FINAL_STATES, TALKING_STATES, WAITING_STATES, OfferState
from telephony.applying import accept_event
from telephony.connect import connect_backoff_seconds
from telephony.events import CALLBACK_REQUESTED, VOICEMAIL, TelephonyEvent
from telephony.instructions import HANG_UP, TRANSFER
from telephony.models import CallEventType, ConnectAttempt, TwilioCall, TwilioDialPath
from telephony.twilio import voice
from telephony.twilio.voice import NextStep, Step

logger = logging.getLogger(__name__)


def call_rang(
    *,
    call_sid: str,
    account_sid: str,
    from_number: str,
    to_number: str,
    base_url: str,
    payload: dict[str, str],
) -> NextStep:
    """The number's "A call comes in": the call rings and is handed to the router (once, however
    often Twilio retries); the caller waits in the queue, or is dialled to the agent who has
    already accepted them."""
    with transaction.atomic():
        accept_event(
            webhook_id=f"twilio:{call_sid}:ringing",
            event=TelephonyEvent(
                type=CallEventType.RINGING,
                call_id=call_sid,
                occurred_at=voice.whole_second(timezone.now()),
                from_number=from_number,
                to_number=to_number,
                payload=payload,
            ),
        )
        call_pk = Call.objects.filter(telephony_call_id=call_sid).values_list("pk", flat=True)[0]
        TwilioCall.objects.get_or_create(
            call_id=call_pk, defaults={"account_sid": account_sid, "public_base_url": base_url}
        )
        return _next_step(call_sid)


# Why a waiting caller leaves the queue (the wait loop answers `<Leave/>`; the enqueue action
# then says what comes next, `_next_step`).
TO_BE_DIALLED = "to be dialled"
FOR_A_MESSAGE = "for a message"


def why_waiting_caller_leaves(*, call_sid: str) -> str | None:
    """The wait loop's question: should the caller leave the queue now, and why? To be dialled:
    an agent accepted them while the REST update that dials them could not be delivered (it
    failed, or has not come in the time it may take). For a message: every agent of their queue
    went offline while they waited, with nobody having accepted them, so they are asked for a
    message as a call coming in now would be. Else None: the wait goes on."""
    twilio_call = _twilio_call(call_sid)
    if twilio_call is None:
        return None
    call = twilio_call.call
    decision = _accepted_decision(call)
    if decision is None:
        waiting = call.state not in FINAL_STATES and call.state not in TALKING_STATES
        if waiting and voicemails.nobody_can_answer(call.queue_id):
            return FOR_A_MESSAGE
        return None
    if twilio_call.dialled_decision_id == decision.pk:
        return None
    attempts = ConnectAttempt.objects.filter(call=call, decision=decision)
    if attempts.exclude(status_code__range=(200, 299)).exists():
        return TO_BE_DIALLED
    patience = timedelta(seconds=settings.TWILIO_API_TIMEOUT_SECONDS + 2)
    accepted_at = decision.offer.responded_at if decision.offer else decision.decided_at
    if not attempts.exists() and accepted_at <= timezone.now() - patience:
        return TO_BE_DIALLED
    return None


def caller_left_queue(*, call_sid: str, queue_result: str) -> NextStep:
    """The enqueue action: why the caller is no longer in the queue, and what happens now."""
    if queue_result == "leave":
        with transaction.atomic():
            return _next_step(call_sid)
    if queue_result == "hangup":
        call_ended(call_sid=call_sid, call_status="completed", occurred_at=None, payload={})
        return NextStep(Step.HANG_UP)
    if queue_result in ("queue-full", "error", "system-error"):
        logger.error(
            "twilio call %r: could not be queued (%s); queued again",
            call_sid,
            queue_result,
            extra=call_fields(call_sid),
        )
        with transaction.atomic():
            next_step = _next_step(call_sid)
        if next_step.step == Step.ENQUEUE:
            return replace(next_step, pause_seconds=settings.TWILIO_WAIT_SECONDS)
        return next_step
    # redirected (Rapport's REST update took the caller to the agent), or bridged by a dequeue
    # outside Rapport: the call goes on elsewhere.
    return NextStep(Step.NOTHING)


def agent_leg_answered(
    *,
    call_sid: str,
    agent_leg_sid: str,
    agent_identity: str,
    occurred_at: datetime,
    payload: dict[str, str],
) -> None:
    """An agent's leg of the caller's call was answered: the call is answered by that agent, or,
    when it is already talking to another agent, transferred to them."""
    call = Call.objects.select_related("agent").filter(telephony_call_id=call_sid).first()
    if call is None or not Agent.objects.filter(telephony_identity=agent_identity).exists():
        # A leg Rapport did not dial, to someone who is not an agent: not an agent's call.
        logger.warning(
            "twilio call %r: leg to %r answered, not a known call and agent",
            call_sid,
            agent_identity,
            extra=call_fields(call_sid),
        )
        return
    handed_over = (
        call.state in TALKING_STATES
        and call.agent is not None
        and call.agent.telephony_identity != agent_identity
    )
    accept_event(
        webhook_id=f"twilio:{agent_leg_sid}:answered",
        event=TelephonyEvent(
            type=CallEventType.TRANSFERRED if handed_over else CallEventType.ANSWERED,
            call_id=call_sid,
            occurred_at=occurred_at,
            agent_identity=agent_identity,
            payload=payload,
        ),
    )


def dial_ended(
    *,
    call_sid: str,
    decision_pk: int,
    dial_status: str,
    dial_call_sid: str,
    dial_seconds: int,
    payload: dict[str, str],
) -> NextStep:
    """The dial action: the agent talked to the caller (hang up: the conversation is over), or
    their phone did not take the call (they missed it; the caller waits again)."""
    decision = (
        RoutingDecision.objects.select_related("agent", "offer").filter(pk=decision_pk).first()
    )
    if decision is None or decision.agent is None:
        raise voice.BadField("decision", "No such decision.")
    if dial_status in voice.DIAL_CONNECTED:
        if dial_call_sid:
            # The agent leg's own "answered" callback may have been lost: this says the same
            # (same event id), at the time the conversation began.
            answered_at = timezone.now() - timedelta(seconds=dial_seconds)
            agent_leg_answered(
                call_sid=call_sid,
                agent_leg_sid=dial_call_sid,
                agent_identity=decision.agent.telephony_identity,
                occurred_at=voice.whole_second(answered_at),
                payload=payload,
            )
        return NextStep(Step.HANG_UP)
    if decision.offer is not None and decision.offer.handoff_from_id is not None:
        return _back_to_the_first_agent(call_sid, decision, dial_status=dial_status)
    with transaction.atomic():
        twilio_call = _lock_twilio_call(call_sid)
        if twilio_call is not None:
            missed = offers.accepted_call_missed(
                call_id=twilio_call.call_id, agent_id=decision.agent_id, why=f"dial_{dial_status}"
            )
            if missed:
                logger.info(
                    "twilio call %r: %s's phone did not answer (%s); back in the queue",
                    call_sid,
                    decision.agent,
                    dial_status,
                    extra=call_fields(call_sid, decision.agent_id),
                )
        return _next_step(call_sid)


def _back_to_the_first_agent(
    call_sid: str, decision: RoutingDecision, *, dial_status: str
) -> NextStep:
    """The colleague's phone did not take a hand-off: the caller is dialled back to the agent who
    handed them over (still theirs, routing.offers `accepted_handoff_missed`)."""
    with transaction.atomic():
        twilio_call = _lock_twilio_call(call_sid)
        if twilio_call is None:
            return NextStep(Step.HANG_UP)
        call = twilio_call.call
        offers.accepted_handoff_missed(
            call_id=call.pk, agent_id=decision.agent_id, why=f"dial_{dial_status}"
        )
        first_agent = Agent.objects.filter(id=call.agent_id).first()
        if call.state not in TALKING_STATES or first_agent is None:
            return _next_step(call_sid)
        theirs = RoutingDecision.objects.filter(call=call, agent=first_agent).order_by("-id")
        first_decision = theirs.filter(offer__state=OfferState.ACCEPTED).first() or theirs.first()
        if first_decision is None or not voice.is_dialable(first_agent.telephony_identity):
            return _next_step(call_sid)
        _mark_dialled(twilio_call, first_decision, via=TwilioDialPath.ENQUEUE_ACTION)
        logger.info(
            "twilio call %r: %s did not take the hand-off (%s); back to %s",
            call_sid,
            decision.agent,
            dial_status,
            first_agent,
        )
        return NextStep(
            Step.DIAL,
            base_url=twilio_call.public_base_url,
            agent_identity=first_agent.telephony_identity,
            decision_pk=first_decision.pk,
        )


def call_ended(
    *, call_sid: str, call_status: str, occurred_at: datetime | None, payload: dict[str, str]
) -> None:
    """The number's status callback with a final CallStatus: the call ended, abandoned when it
    never reached an agent."""
    twilio_call = _twilio_call(call_sid)
    call = twilio_call.call if twilio_call is not None else None
    occurred_at = occurred_at or voice.whole_second(timezone.now())
    if call is not None and call.last_event_at is not None:
        # Nothing happens to a call after Twilio reports it over: an earlier-stamped end only
        # means the clocks differ by a second.
        occurred_at = max(occurred_at, call.last_event_at)
    accept_event(
        webhook_id=f"twilio:{call_sid}:ended",
        event=TelephonyEvent(
            type=CallEventType.ENDED,
            call_id=call_sid,
            occurred_at=occurred_at,
            reason=_end_reason(twilio_call, call_status),
            payload=payload,
        ),
    )


def dial_agent_by_rest_update(*, call_pk: int, decision_pk: int | None) -> float | None:
    """Bridge the caller to the agent who accepted them: a REST update of the live call to a
    `<Dial>` of the agent. Returns the seconds to wait before trying again, or None when done
    (delivered, dialled already by the wait loop's fallback, or no longer wanted).

    The TwilioCall row stays locked while Twilio is asked (at most TWILIO_API_TIMEOUT_SECONDS),
    so the enqueue action cannot dial the agent a second time meanwhile."""
    with transaction.atomic():
        twilio_call = (
            TwilioCall.objects.select_for_update(of=("self",))
            .select_related("call", "call__queue")
            .filter(call_id=call_pk)
            .first()
        )
        if twilio_call is None:
            return None
        call = twilio_call.call
        decision = _accepted_decision(call, decision_pk=decision_pk)
        if decision is None or twilio_call.dialled_decision_id == decision.pk:
            return None
        response = voice.dial(
            base_url=twilio_call.public_base_url,
            agent_identity=decision.agent.telephony_identity,
            decision_pk=decision.pk,
        )
        attempt = ConnectAttempt.objects.filter(call=call, decision=decision).count() + 1
        if response is None:
            ConnectAttempt.objects.create(
                call=call,
                decision=decision,
                attempt=attempt,
                error=f"{decision.agent.telephony_identity!r} is not client:, sip: or +E.164",
            )
            logger.error(
                "twilio call %r: agent %s cannot be dialled (telephony identity %r)",
                call.telephony_call_id,
                decision.agent,
                decision.agent.telephony_identity,
                extra=call_fields(call.telephony_call_id, decision.agent_id),
            )
            offers.accepted_call_missed(
                call_id=call.pk, agent_id=decision.agent_id, why="identity_not_dialable"
            )
            return None
        status_code, error = voice.update_live_call(
            call_sid=call.telephony_call_id, response=response
        )
        ConnectAttempt.objects.create(
            call=call, decision=decision, attempt=attempt, status_code=status_code, error=error
        )
        if status_code is not None and 200 <= status_code < 300:
            _mark_dialled(twilio_call, decision, via=TwilioDialPath.REST_UPDATE)
            logger.info(
                "twilio call %r: dialling %s",
                call.telephony_call_id,
                decision.agent,
                extra=call_fields(call.telephony_call_id, decision.agent_id),
            )
            return None
    countdown = connect_backoff_seconds(attempt)
    logger.warning(
        "twilio call %r: REST update not delivered (attempt %d: %s); again in %g s",
        call.telephony_call_id,
        attempt,
        error or status_code,
        countdown,
        extra=call_fields(call.telephony_call_id, decision.agent_id),
    )
    return countdown


def transfer_by_rest_update(*, call_pk: int, decision_pk: int) -> float | None:
    """Move the caller to the colleague who accepted a hand-off (routing.transfers): a REST
    update of the live call to a `<Dial>` of them, with the dial action and agent-leg callbacks
    of any dial, so their leg answered is the transfer (`agent_leg_answered`). Returns the
    seconds to wait before trying again, or None when done or no longer wanted (the call ended,
    was moved already, or the hand-off is no longer accepted)."""
    with transaction.atomic():
        twilio_call = (
            TwilioCall.objects.select_for_update(of=("self",))
            .select_related("call")
            .filter(call_id=call_pk)
            .first()
        )
        if twilio_call is None:
            return None
        call = twilio_call.call
        decision = (
            RoutingDecision.objects.select_related("agent")
            .filter(
                pk=decision_pk,
                call=call,
                offer__state=OfferState.ACCEPTED,
                offer__handoff_from__isnull=False,
            )
            .first()
        )
        if (
            decision is None
            or call.state not in TALKING_STATES
            or call.agent_id == decision.agent_id
            or twilio_call.dialled_decision_id == decision.pk
        ):
            return None
        attempt = (
            ConnectAttempt.objects.filter(
                call=call, decision=decision, instruction=TRANSFER
            ).count()
            + 1
        )
        response = voice.dial(
            base_url=twilio_call.public_base_url,
            agent_identity=decision.agent.telephony_identity,
            decision_pk=decision.pk,
        )
        if response is None:
            ConnectAttempt.objects.create(
                call=call,
                decision=decision,
                instruction=TRANSFER,
                attempt=attempt,
                error=f"{decision.agent.telephony_identity!r} is not client:, sip: or +E.164",
            )
            logger.error(
                "twilio call %r: cannot transfer to %s (telephony identity %r)",
                call.telephony_call_id,
                decision.agent,
                decision.agent.telephony_identity,
            )
            return None
        status_code, error = voice.update_live_call(
            call_sid=call.telephony_call_id, response=response
        )
        ConnectAttempt.objects.create(
            call=call,
            decision=decision,
            instruction=TRANSFER,
            attempt=attempt,
            status_code=status_code,
            error=error,
        )
        if status_code is not None and 200 <= status_code < 300:
            _mark_dialled(twilio_call, decision, via=TwilioDialPath.REST_UPDATE)
            logger.info(
                "twilio call %r: transferring to %s", call.telephony_call_id, decision.agent
            )
            return None
    countdown = connect_backoff_seconds(attempt)
    logger.warning(
        "twilio call %r: transfer not delivered (attempt %d: %s); again in %g s",
        call.telephony_call_id,
        attempt,
        error or status_code,
        countdown,
    )
    return countdown


def hang_up_by_rest_update(*, call_pk: int) -> float | None:
    """End the caller's live call, as the agent asked from the console; Twilio's status callback
    then ends it in Rapport as any hang-up. None when done or the call is over already."""
    call = Call.objects.filter(pk=call_pk).first()
    if call is None or call.state in FINAL_STATES:
        return None
    attempt = ConnectAttempt.objects.filter(call=call, instruction=HANG_UP).count() + 1
    status_code, error = voice.end_live_call(call_sid=call.telephony_call_id)
    ConnectAttempt.objects.create(
        call=call, instruction=HANG_UP, attempt=attempt, status_code=status_code, error=error
    )
    if status_code is not None and 200 <= status_code < 300:
        logger.info("twilio call %r: hung up from the console", call.telephony_call_id)
        return None
    return connect_backoff_seconds(attempt)


# ---------------------------------------------------------------------------------------------


def _twilio_call(call_sid: str) -> TwilioCall | None:
    return (
        TwilioCall.objects.select_related("call", "call__queue")
        .filter(call__telephony_call_id=call_sid)
        .first()
    )


def _lock_twilio_call(call_sid: str) -> TwilioCall | None:
    return (
        TwilioCall.objects.select_for_update(of=("self",))
        .select_related("call", "call__queue")
        .filter(call__telephony_call_id=call_sid)
        .first()
    )


def _accepted_decision(call: Call, *, decision_pk: int | None = None) -> RoutingDecision | None:
    """The decision whose agent accepted `call` and is still to be connected to it, if any."""
    if call.state not in WAITING_STATES or call.agent_id is None:
        return None
    accepted = RoutingDecision.objects.select_related("agent", "offer").filter(
        call=call, agent_id=call.agent_id, offer__state=OfferState.ACCEPTED
    )
    if decision_pk is not None:
        accepted = accepted.filter(pk=decision_pk)
    return accepted.order_by("-decided_at", "-id").first()


def _next_step(call_sid: str) -> NextStep:
    """What the caller's call does now (inside the caller's transaction): wait in the queue, be
    dialled to the agent who accepted them (recorded, so the REST update will not dial them
    too), or, once the call is over, hang up."""
    twilio_call = _lock_twilio_call(call_sid)
    if twilio_call is None:
        return NextStep(Step.HANG_UP)
    call = twilio_call.call
    base_url = twilio_call.public_base_url
    if call.state in FINAL_STATES:
        if call.end_reason == CALLBACK_REQUESTED:
            return NextStep(
                Step.CALLBACK_CONFIRMED, base_url=base_url, message_for=_message_for(call)
            )
        return NextStep(Step.HANG_UP)
    if call.state in TALKING_STATES:
        return NextStep(Step.NOTHING)
    decision = _accepted_decision(call)
    if decision is not None and voice.is_dialable(decision.agent.telephony_identity):
        if twilio_call.dialled_decision_id != decision.pk:
            _mark_dialled(twilio_call, decision, via=TwilioDialPath.ENQUEUE_ACTION)
        return NextStep(
            Step.DIAL,
            base_url=base_url,
            agent_identity=decision.agent.telephony_identity,
            decision_pk=decision.pk,
        )
    if decision is None and voicemails.nobody_can_answer(call.queue_id):
        _end_for_voicemail(call_sid)
        return NextStep(Step.VOICEMAIL, base_url=base_url)
    queue_name = call.queue.slug if call.queue is not None else settings.TELEPHONY_DEFAULT_QUEUE
    return NextStep(Step.ENQUEUE, base_url=base_url, queue_name=queue_name)


def _end_for_voicemail(call_sid: str) -> None:
    """Nobody can answer: the call leaves the queue now, ended as a message asked for (the
    event id of Twilio's own end, whose callback then changes nothing)."""
    accept_event(
        webhook_id=f"twilio:{call_sid}:ended",
        event=TelephonyEvent(
            type=CallEventType.ENDED,
            call_id=call_sid,
            occurred_at=voice.whole_second(timezone.now()),
            reason=VOICEMAIL,
        ),
    )
    logger.info("twilio call %r: nobody can answer; asked to leave a message", call_sid)


def _message_for(call: Call) -> str:
    """Whom the caller's message is for, as they hear it: their last agent's first name only
    when we know who is calling (never on a shared line), else "us"."""
    if call.customer_id is None or call.last_agent_id is None:
        return "us"
    agent = Agent.objects.filter(pk=call.last_agent_id).only("display_name").first()
    return agent.display_name.split()[0] if agent is not None and agent.display_name else "us"


def _mark_dialled(twilio_call: TwilioCall, decision: RoutingDecision, *, via: str) -> None:
    twilio_call.dialled_decision = decision
    twilio_call.dialled_via = via
    twilio_call.dialled_at = timezone.now()
    twilio_call.save(update_fields=["dialled_decision", "dialled_via", "dialled_at"])


def _end_reason(twilio_call: TwilioCall | None, call_status: str) -> str:
    """The call's end reason. Twilio says `completed` for any call it answered, and it answers
    every caller with `<Enqueue>`: whether an agent took the call is Rapport's to say."""
    call = twilio_call.call if twilio_call is not None else None
    if call is not None and call.connected_at is not None:
        return "completed"
    if call_status in ("busy", "failed", "no-answer"):
        return call_status
    if twilio_call is not None and twilio_call.dialled_decision_id is not None:
        # An agent's phone was dialled and its answer may still be on its way: nobody answered
        # as far as Rapport knows, an answer stamped earlier than the end corrects it.
        return "no-answer"
    return "abandoned"
