"""Telling the telephony system whom to connect, once an agent took a call: a signed
`call.connect` pushed to `TELEPHONY_CONTROL_URL` (telephony.signed_events.connect_push), or for a
call that came in through Twilio a REST update of the live call (telephony.twilio.calls). Each
is retried with a backoff; one that was lost (the broker was away, a hook before it failed, a
worker died mid-retry) is sent again while the call still waits for the agent who took it.
A phone system that pulls asks `GET /api/telephony/calls/<id>/` instead."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from infrastructure import dispatch
from routing import callbacks
from routing.models import Call, RoutingDecision
from routing.selectors import calls_accepted_not_answered
from routing.states import OfferState
from telephony.models import ConnectAttempt, TwilioCall

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
    for a call still waiting to be connected to the agent who took it."""
    if not settings.TELEPHONY_CONTROL_URL and not settings.TWILIO_ACCOUNT_SID:
        return
    lost = connect_pushes_lost(now=timezone.now())
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
    """Whether a call waits to be connected to the agent who took it (one query: beat asks
    every second, and only then sends the task that looks for lost pushes)."""
    return calls_accepted_not_answered(accepted_before=now - CONNECT_LOST_AFTER).exists()


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
        .values_list("call_id", "id")
    )
    lost = []
    for call_pk, decision_pk in awaiting:
        latest = (
            ConnectAttempt.objects.filter(call_id=call_pk, decision_id=decision_pk)
            .order_by("-id")
            .values_list("attempt", "status_code", "sent_at")
            .first()
        )
        if latest is not None:
            attempt, status_code, sent_at = latest
            if status_code is not None and 200 <= status_code < 300:
                continue
            due = sent_at + timedelta(seconds=connect_backoff_seconds(attempt))
            if due + patience > now:
                continue
        lost.append((call_pk, decision_pk))
    return lost
