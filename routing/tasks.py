"""Celery adapters of the router. Each is idempotent: it re-reads the database under lock, so a
message delivered twice does the work once."""

from celery import shared_task
from django.db import InterfaceError, OperationalError

from routing import router
from routing.handoff import OFFER_NEXT_CALL, ROUTE_CALL

# A database connection the server dropped fails the task's first statement (one used a moment
# ago is not checked first: infrastructure.database.postgresql). The task runs again at once;
# the failed run's task_postrun closes the broken connection (rapport.celery), so the next run
# opens a new one.
ON_A_DROPPED_CONNECTION = {
    "autoretry_for": (InterfaceError, OperationalError),
    "max_retries": 2,
    "default_retry_delay": 0,
}


@shared_task(name=ROUTE_CALL, **ON_A_DROPPED_CONNECTION)
def route_call(call_id: int) -> None:
    router.route_call(call_id)


@shared_task(name=OFFER_NEXT_CALL, **ON_A_DROPPED_CONNECTION)
def offer_next_call(agent_id: int) -> None:
    router.offer_next_call(agent_id)


@shared_task(name="routing.sweep")
def sweep() -> None:
    router.sweep()
