"""Telling the telephony system whom to connect, once an agent took a call: a signed
`call.connect` pushed to `TELEPHONY_CONTROL_URL` (telephony.signed_events.connect_push), or for a
call that came in through Twilio a REST update of the live call (telephony.twilio.calls). Each
is retried with a backoff; one that was lost (the broker was away, a hook before it failed, a
worker died mid-retry) is sent again while the call still waits for the agent who took it. So
is a hand-off's `call.transfer` (telephony.instructions) while the call is still with the agent
who handed it over.
A phone system that pulls asks `GET /api/telephony/calls/<id>/` instead."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from infrastructure import dispatch
from routing import callbacks
from routing.models import Call, RoutingDecision
from routing.selectors import calls_accepted_not_answered, handoffs_accepted_not_done
from routing.states import OfferState
from telephony.instructions import (
    CONNECT,
    DIAL,
    PUSH_CALL_INSTRUCTION,
    TRANSFER,
    TWILIO_TRANSFER,
)
from telephony.models import CallEvent, ConnectAttempt, TwilioCall

logger = logging.getLogger(__name__)

PUSH_CALL_CONNECT = "telephony.push_call_connect"
TWILIO_DIAL_AGENT = "telephony.twilio_dial_agent"
PLACE_CALLBACK = "telephony.place_callback"
RESEND_LOST_CONNECTS = "telephony.resend_lost_connects"

# A call accepted this long ago and still not answered may have lost its `call.connect`.
CONNECT_LOST_AFTER = timedelta(seconds=2)


def request_connect(call: Call, decision: RoutingDecision | None) -> None:
    """Tell the telephony system which agent to connect (sent after commit, with retries).

    The agent is the decision's, or without a decision the call's. A call that came in through
    Twilio is bridged by Rapport itself, with a REST update of the live call.
    """
    decision_pk = decision.pk if decision is not None else None
    if call.callback_id is not None:
        # A call back: nobody is on the line yet; the phone system places the call, or the
        # agent dials it themselves.
        callbacks.placing(call)
        if not call.callback.agent_dials:
            dispatch.publish_on_commit(PLACE_CALLBACK, call.pk, decision_pk)
        return
    if TwilioCall.objects.filter(call_id=call.pk).exists():
        dispatch.publish_on_commit(TWILIO_DIAL_AGENT, call.pk, decision_pk)
        return
    if not settings.TELEPHONY_CONTROL_URL:
        return
    dispatch.publish_on_commit(PUSH_CALL_CONNECT, call.pk, decision_pk)


def rapport_places_callbacks_of(call: Call) -> bool:
    """Whether Rapport can have a call back for `call`'s caller placed: through Twilio, for a
    call that came in through it, or by a `call.dial` push. Otherwise the agent dials it."""
    if settings.TELEPHONY_CONTROL_URL:
        return True
    return bool(settings.TWILIO_ACCOUNT_SID) and TwilioCall.objects.filter(call_id=call.pk).exists()


def resend_lost_connects() -> None:
    """Send again each `call.connect` push (for a Twilio call: the REST update) that was lost,
    for a call still waiting to be connected to the agent who took it; and each `call.transfer`
    (Twilio: its REST update) lost for a hand-off accepted and not yet carried out."""
    if not settings.TELEPHONY_CONTROL_URL and not settings.TWILIO_ACCOUNT_SID:
        return
    now = timezone.now()
    _resend_lost_transfers(now=now)
    lost = connect_pushes_lost(now=now)
    through_twilio = set(
        TwilioCall.objects.filter(call_id__in=[call_pk for call_pk, _ in lost]).values_list(
            "call_id", flat=True
        )
    )
    callback_tries = dict(
        Call.objects.filter(
            pk__in=[call_pk for call_pk, _ in lost], callback__isnull=False
        ).values_list("pk", "callback__agent_dials")
    )
    for call_pk, decision_pk in lost:
        if callback_tries.get(call_pk):
            continue  # the agent dials it
        if call_pk in callback_tries:
            logger.warning("call pk %s: placing the call back was lost; again", call_pk)
            dispatch.publish(PLACE_CALLBACK, call_pk, decision_pk)
        elif call_pk in through_twilio:
            logger.warning("call pk %s: Twilio REST update was lost; sending it again", call_pk)
            dispatch.publish(TWILIO_DIAL_AGENT, call_pk, decision_pk)
        elif settings.TELEPHONY_CONTROL_URL:
            logger.warning("call pk %s: call.connect was lost; pushing it again", call_pk)
            dispatch.publish(PUSH_CALL_CONNECT, call_pk, decision_pk)


def any_connect_pending(*, now: datetime) -> bool:
    """Whether a call waits to be connected to the agent who took it, or to the colleague who
    accepted its hand-off (one query: beat asks every second, and only then sends the task that
    looks for lost pushes)."""
    accepted_before = now - CONNECT_LOST_AFTER
    return Call.objects.filter(
        Q(pk__in=calls_accepted_not_answered(accepted_before=accepted_before).values("pk"))
        | Q(pk__in=_handoffs_to_tell(accepted_before=accepted_before).values("call_id"))
    ).exists()


def _handoffs_to_tell(*, accepted_before: datetime):
    """Accepted hand-offs not yet carried out, on calls whose phone system is told of them (not
    Generic CTI, where the agent transfers on the phone)."""
    told_by_cti = CallEvent.objects.filter(call=OuterRef("call_id"), webhook_id__startswith="cti:")
    return handoffs_accepted_not_done(accepted_before=accepted_before).exclude(Exists(told_by_cti))


def _resend_lost_transfers(*, now: datetime) -> None:
    patience = timedelta(seconds=settings.TELEPHONY_CONNECT_TIMEOUT_SECONDS + 2)
    awaiting = _handoffs_to_tell(accepted_before=now - patience).values_list(
        "call_id", "decision__id"
    )
    through_twilio = set(
        TwilioCall.objects.filter(call_id__in=[call_pk for call_pk, _ in awaiting]).values_list(
            "call_id", flat=True
        )
    )
    for call_pk, decision_pk in awaiting:
        if decision_pk is None or not _lost(call_pk, decision_pk, TRANSFER, now, patience):
            continue
        if call_pk in through_twilio:
            logger.warning("call pk %s: Twilio transfer update was lost; sending it again", call_pk)
            dispatch.publish(TWILIO_TRANSFER, call_pk, decision_pk)
        elif settings.TELEPHONY_CONTROL_URL:
            logger.warning("call pk %s: call.transfer was lost; pushing it again", call_pk)
            dispatch.publish(PUSH_CALL_INSTRUCTION, call_pk, TRANSFER, decision_pk)


def connect_backoff_seconds(attempt: int) -> float:
    """How long a push waits after its failed `attempt` before the next one."""
    base = settings.TELEPHONY_CONNECT_RETRY_SECONDS
    return min(base * 2 ** (attempt - 1), settings.TELEPHONY_CONNECT_RETRY_MAX_SECONDS)


def connect_pushes_lost(*, now: datetime) -> list[tuple[int, int]]:
    """`(call pk, decision pk)` of each accepted, unanswered call whose `call.connect` push is
    neither delivered nor still on its way: never tried, or its next try is overdue. A push is
    given its backoff and then its timeout and a moment more before it counts as lost."""
    patience = timedelta(seconds=settings.TELEPHONY_CONNECT_TIMEOUT_SECONDS + 2)
    awaiting = (
        RoutingDecision.objects.filter(
            call__in=calls_accepted_not_answered(accepted_before=now - patience),
            offer__state=OfferState.ACCEPTED,
        )
        # A Twilio caller dialled to the agent by the wait loop's fallback needs no push.
        .exclude(
            pk__in=TwilioCall.objects.filter(dialled_decision__isnull=False).values(
                "dialled_decision"
            )
        )
        .values_list("call_id", "id", "call__callback_id")
    )
    return [
        (call_pk, decision_pk)
        for call_pk, decision_pk, callback_id in awaiting
        # A call back's try is placed (`call.dial`), not connected.
        if _lost(call_pk, decision_pk, DIAL if callback_id else CONNECT, now, patience)
    ]


def _lost(
    call_pk: int, decision_pk: int, instruction: str, now: datetime, patience: timedelta
) -> bool:
    """Whether `instruction` for the decision is neither delivered nor on its way: never tried,
    or its next try is overdue (given its backoff, then its timeout and a moment more)."""
    latest = (
        ConnectAttempt.objects.filter(
            call_id=call_pk, decision_id=decision_pk, instruction=instruction
        )
        .order_by("-id")
        .values_list("attempt", "status_code", "sent_at")
        .first()
    )
    if latest is None:
        return True
    attempt, status_code, sent_at = latest
    if status_code is not None and 200 <= status_code < 300:
        return False
    due = sent_at + timedelta(seconds=connect_backoff_seconds(attempt))
    return due + patience <= now
