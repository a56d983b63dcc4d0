"""Under the ASGI server the middleware chain and the view run in the request's one thread."""

import threading

import httpx
import pytest
from asgiref.sync import AsyncToSync, SyncToAsync, async_to_sync, iscoroutinefunction
from django.http import JsonResponse
from django.urls import path

from rapport.sync_middleware import SyncChainASGIHandler

seen_threads: list[int] = []


def where_am_i(request):
    seen_threads.append(threading.get_ident())
    return JsonResponse({"ok": True})


urlpatterns = [path("where/", where_am_i)]


def _unwrapped(handler):
    while hasattr(handler, "__wrapped__") and not isinstance(handler, (SyncToAsync, AsyncToSync)):
        handler = handler.__wrapped__
    return handler


def test_no_middleware_and_no_view_is_handed_between_the_event_loop_and_a_thread():
    middleware = _unwrapped(SyncChainASGIHandler()._middleware_chain)
    seen = []
    while hasattr(middleware, "get_response"):
        seen.append(type(middleware).__name__)
        assert not iscoroutinefunction(middleware), f"{seen[-1]} runs async"
        assert not isinstance(middleware, (SyncToAsync, AsyncToSync)), f"hand-off after {seen}"
        middleware = _unwrapped(middleware.get_response)
    assert "SessionMiddleware" in seen and "AxesMiddleware" in seen
    # Below the whole chain, Django's sync path to the view: no trip back to the event loop.
    assert middleware.__func__ is SyncChainASGIHandler._get_response


@pytest.mark.django_db
def test_the_handler_serves_a_request_through_the_middleware_to_the_view(settings):
    settings.ROOT_URLCONF = __name__
    settings.ALLOWED_HOSTS = ["testserver"]
    seen_threads.clear()

    async def get() -> httpx.Response:
        transport = httpx.ASGITransport(app=SyncChainASGIHandler())
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            return await client.get("/where/")

    response = async_to_sync(get)()

    assert response.status_code == 200, response.text
    assert len(seen_threads) == 1
    # The whole chain ran: the security middleware's headers are on the answer.
    assert response.headers["x-content-type-options"] == "nosniff"
