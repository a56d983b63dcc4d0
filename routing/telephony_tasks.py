"""Celery tasks of the telephony integration (registered through CELERY_IMPORTS).

Publishing from a web request uses its own broker connection with short timeouts and no retries,
so a broker outage costs the webhook milliseconds, never a hang; what could not be published is
found again in the database (`resend_unrouted_calls`).
"""

from __future__ import annotations

import functools
import json
import logging
from datetime import timedelta

import httpx
import kombu.exceptions
import redis.exceptions
from celery import shared_task
from django.conf import settings
from django.utils import timezone

from rapport.celery import app
from routing.call_states import FINAL_STATES, CallState
from routing.models import Call, ConnectAttempt, RoutingDecision
from routing.tasks import route_call
from routing.telephony_signing import sign

logger = logging.getLogger(__name__)

BROKER_ERRORS = (kombu.exceptions.KombuError, redis.exceptions.RedisError, OSError)


@functools.cache
def publishing_pool():
    """Broker connections for publishing from web requests: shared by the process (each ASGI
    request runs in a thread of its own), failing fast when the broker is away."""
    connection = app.connection_for_write(
        connect_timeout=1,
        transport_options={
            **app.conf.broker_transport_options,
            "max_retries": 0,
            "socket_connect_timeout": 1,
            "socket_timeout": 2,
        },
    )
    return connection.Pool(limit=16)


def _publish(task, *args) -> bool:
    try:
        with publishing_pool().acquire(block=True, timeout=2) as connection:
            task.apply_async(args=args, retry=False, connection=connection)
    except BROKER_ERRORS as unreachable:
        logger.warning("broker unreachable, %s%r not sent now: %s", task.name, args, unreachable)
        return False
    return True


def publish_route_call(call_pk: int) -> bool:
    """Send `routing.route_call` for the call; on success mark the hand-off as done."""
    if not _publish(route_call, call_pk):
        return False
    Call.objects.filter(pk=call_pk, routing_requested_at__isnull=True).update(
        routing_requested_at=timezone.now()
    )
    return True


def publish_call_connect(call_pk: int, decision_pk: int | None) -> bool:
    return _publish(push_call_connect, call_pk, decision_pk)


@shared_task(name="routing.resend_unrouted_calls", ignore_result=True)
def resend_unrouted_calls(grace_seconds: float = 2.0) -> int:
    """Re-send the hand-off of queued calls whose `route_call` never reached the broker."""
    cutoff = timezone.now() - timedelta(seconds=grace_seconds)
    waiting = Call.objects.filter(
        state=CallState.QUEUED, routing_requested_at__isnull=True, queued_at__lte=cutoff
    ).order_by("queued_at")
    sent = 0
    for call_pk in waiting.values_list("pk", flat=True)[:500]:
        if not publish_route_call(call_pk):
            break
        sent += 1
    return sent


def connect_backoff_seconds(attempt: int) -> float:
    base = settings.TELEPHONY_CONNECT_RETRY_SECONDS
    return min(base * 2 ** (attempt - 1), settings.TELEPHONY_CONNECT_RETRY_MAX_SECONDS)


@shared_task(name="routing.push_call_connect", bind=True, max_retries=None, ignore_result=True)
def push_call_connect(self, call_pk: int, decision_pk: int | None) -> None:
    """POST the signed `call.connect` instruction until a 2xx, or until the call ends."""
    url = settings.TELEPHONY_CONTROL_URL
    call = Call.objects.select_related("agent").filter(pk=call_pk).first()
    if not url or call is None or call.state in FINAL_STATES:
        return
    decision = None
    if decision_pk is not None:
        decision = (
            RoutingDecision.objects.select_related("agent")
            .filter(pk=decision_pk, call=call)
            .first()
        )
    agent = decision.agent if decision is not None else call.agent
    if agent is None:
        return
    attempt = ConnectAttempt.objects.filter(call=call, decision=decision).count() + 1
    body = json.dumps(
        {
            "type": "call.connect",
            "call_id": call.telephony_call_id,
            "agent": agent.telephony_identity,
            "decision_id": decision_pk,
        }
    )
    headers = {"content-type": "application/json", **sign(body=body)}
    status_code, error = None, ""
    try:
        response = httpx.post(
            url, content=body, headers=headers, timeout=settings.TELEPHONY_CONNECT_TIMEOUT_SECONDS
        )
        status_code = response.status_code
    except httpx.HTTPError as failed:
        error = f"{type(failed).__name__}: {failed}"[:300]
    ConnectAttempt.objects.create(
        call=call, decision=decision, attempt=attempt, status_code=status_code, error=error
    )
    if status_code is not None and 200 <= status_code < 300:
        return
    raise self.retry(countdown=connect_backoff_seconds(attempt))
