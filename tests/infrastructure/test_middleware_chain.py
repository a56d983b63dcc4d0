"""Under the ASGI server the middleware chain and the view run in the request's one thread."""

import asyncio
import threading
import time

import httpx
import pytest
from asgiref.sync import AsyncToSync, SyncToAsync, async_to_sync, iscoroutinefunction
from django.core.signals import request_finished, request_started
from django.http import JsonResponse, StreamingHttpResponse
from django.urls import path

from infrastructure.asgi_handler import RequestThreads, SyncChainASGIHandler

seen_threads: list = []


def where_am_i(request):
    seen_threads.append(threading.current_thread())
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


def signalled_thread(**kwargs):
    seen_threads.append(("started", threading.current_thread()))


@pytest.mark.django_db
def test_each_request_runs_on_one_thread_and_the_next_request_reuses_it(settings):
    settings.ROOT_URLCONF = __name__
    settings.ALLOWED_HOSTS = ["testserver"]
    seen_threads.clear()
    handler = SyncChainASGIHandler()
    request_started.connect(signalled_thread)

    async def get_twice() -> list[int]:
        transport = httpx.ASGITransport(app=handler)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            first = await client.get("/where/")
            # The thread is handed back by a job queued behind the request's own work.
            while not handler.request_threads.idle:
                await asyncio.sleep(0.001)
            second = await client.get("/where/")
        return [first.status_code, second.status_code]

    try:
        assert async_to_sync(get_twice)() == [200, 200]
    finally:
        request_started.disconnect(signalled_thread)

    started_first, view_first, started_second, view_second = seen_threads
    # Django's request_started (which recycles the database connection) runs on the thread that
    # then runs the view, as with Django's own handler; the second request is lent the same
    # thread, now idle, rather than a new one.
    assert started_first == ("started", view_first)
    assert started_second == ("started", view_second)
    assert view_first == view_second


def test_a_thread_still_busy_after_its_request_is_not_lent_until_it_is_done():
    threads = RequestThreads()
    busy = threads.lend()
    release = threading.Event()
    busy.submit(release.wait, 5)
    threads.give_back(busy)

    assert threads.lend() is not busy
    release.set()
    deadline = time.monotonic() + 5
    while not threads.idle and time.monotonic() < deadline:
        time.sleep(0.01)
    assert threads.lend() is busy


def test_idle_threads_beyond_the_kept_number_are_stopped():
    threads = RequestThreads(keep=1)
    first, second = threads.lend(), threads.lend()
    threads.give_back(first)
    threads.give_back(second)

    deadline = time.monotonic() + 5
    while not (first._shutdown or second._shutdown) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert list(threads.idle) in ([first], [second])
    assert (first._shutdown, second._shutdown) in ((False, True), (True, False))


class CountingThreads(RequestThreads):
    def __init__(self) -> None:
        super().__init__()
        self.handed: list[str] = []

    def lend(self):
        executor = super().lend()
        original = executor.submit

        def submit(fn, *args, **kwargs):
            self.handed.append(getattr(fn, "__name__", repr(fn)))
            return original(fn, *args, **kwargs)

        executor.submit = submit
        return executor


def stream_of_two(request):
    async def two_parts():
        yield b"one,"
        yield b"two"

    return StreamingHttpResponse(two_parts())


urlpatterns += [path("stream/", stream_of_two)]


def _served(settings, *paths: str) -> tuple[list[httpx.Response], CountingThreads]:
    settings.ROOT_URLCONF = __name__
    settings.ALLOWED_HOSTS = ["testserver"]
    handler = SyncChainASGIHandler()
    handler.request_threads = threads = CountingThreads()

    async def get() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=handler)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            return [await client.get(each) for each in paths]

    return async_to_sync(get)(), threads


@pytest.mark.django_db
def test_a_request_is_handed_to_its_thread_once_and_finished_there(settings):
    finished_on: list = []

    def note_finished(**kwargs):
        finished_on.append(threading.current_thread())

    seen_threads.clear()
    request_finished.connect(note_finished)
    try:
        (response,), threads = _served(settings, "/where/")
    finally:
        request_finished.disconnect(note_finished)

    assert response.status_code == 200
    # Django's handler hands request_started, the view and the response's close to the thread
    # one by one, each a wait for the thread and then for the event loop.
    handed_for_the_request = [name for name in threads.handed if name != "_idle_again"]
    assert len(handed_for_the_request) == 1, threads.handed
    assert finished_on == seen_threads


@pytest.mark.django_db
def test_a_streamed_response_is_sent_whole_and_then_closed(settings):
    finished: list = []

    def note_finished(**kwargs):
        finished.append(True)

    request_finished.connect(note_finished)
    try:
        (response, after), _ = _served(settings, "/stream/", "/where/")
    finally:
        request_finished.disconnect(note_finished)

    assert response.status_code == 200 and response.content == b"one,two"
    assert after.status_code == 200
    assert finished == [True, True]
