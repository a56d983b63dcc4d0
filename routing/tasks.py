from celery import shared_task

from routing import router


@shared_task(name="routing.route_call")
def route_call(call_id: int) -> None:
    router.route_call(call_id)
