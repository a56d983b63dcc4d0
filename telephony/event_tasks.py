"""The Celery side of the webhook's intake (telephony.intake): the intake records each event,
durably, and publishes `APPLY_RECORDED_EVENT`; a worker applies it to its call."""

from __future__ import annotations

import logging

from celery import shared_task
from django.utils import timezone

from infrastructure import dispatch
from routing import handoff, router
from routing.tasks import ON_A_DROPPED_CONNECTION
from telephony import selectors, services

logger = logging.getLogger(__name__)

APPLY_RECORDED_EVENT = "telephony.apply_recorded_event"
APPLY_EVENTS_WAITING_TOO_LONG = "telephony.apply_events_waiting_too_long"


@shared_task(name=APPLY_RECORDED_EVENT, ignore_result=True, **ON_A_DROPPED_CONNECTION)
def apply_recorded_event(event_id: int) -> None:
    apply_and_route(event_id)


@shared_task(name=APPLY_EVENTS_WAITING_TOO_LONG, ignore_result=True)
def apply_events_waiting_too_long() -> None:
    """Sent by beat while an event's task is lost: applied here, in the order they happened."""
    waiting = selectors.events_waiting_too_long(now=timezone.now())
    for event_id in waiting:
        apply_and_route(event_id)
    if waiting:
        logger.warning("%d recorded event(s) had lost their task; applied now", len(waiting))


def apply_and_route(event_id: int) -> None:
    """Apply the event; a call it queued is routed here and now, not by another task."""
    with dispatch.done_by_this_task(handoff.ROUTE_CALL) as calls_to_route:
        services.apply_recorded_event(event_id)
    for (call_id,) in calls_to_route:
        router.route_call(call_id)
