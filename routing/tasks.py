"""Celery adapters of the router. Each is idempotent: it re-reads the database under lock, so a
message delivered twice does the work once."""

from celery import shared_task

from routing import router
from routing.dispatch import OFFER_NEXT_CALL, ROUTE_CALL


@shared_task(name=ROUTE_CALL)
def route_call(call_id: int) -> None:
    router.route_call(call_id)


@shared_task(name=OFFER_NEXT_CALL)
def offer_next_call(agent_id: int) -> None:
    router.offer_next_call(agent_id)


@shared_task(name="routing.sweep")
def sweep() -> None:
    router.sweep()
