"""The ASGI server's Django handler, with the middleware chain and the view run synchronously,
in the request's one thread.

Django's ASGI handler builds an async middleware chain. Every middleware here is sync (or, like
django-axes, either), so Django adapts: the chain is handed to the request's thread, and at its
bottom `_get_response_async` is handed back to the event loop to resolve the URL, which hands
the (sync) view to the thread again. Each hand-off waits for the event loop, which under load is
busy with hundreds of agent sockets: a plain view cost 3 ms of CPU, most of it switching, and
the telephony webhook waited for the loop twice per event. Built sync, the chain and the view
run in one hand-off, as under WSGI; the ASGI server still serves the request and its sockets.

Each request still has a thread of its own, as Django's handler gives it (its `request_started`,
its view and its `request_finished` on one thread, the one holding its database connection), but
the thread is borrowed from a pool of idle ones instead of started for the request and joined
after it by a second new thread: those two thread starts were about a tenth of the server's CPU
per webhook event.
"""

from __future__ import annotations

import collections
from concurrent.futures import ThreadPoolExecutor

import django
from asgiref.sync import ThreadSensitiveContext, sync_to_async
from django.core.handlers.asgi import ASGIHandler
from django.http import HttpRequest, HttpResponseBase

IDLE_REQUEST_THREADS_KEPT = 64


class RequestThreads:
    """Single-thread executors, one lent to each request while it runs, then kept for the next."""

    def __init__(self, keep: int = IDLE_REQUEST_THREADS_KEPT) -> None:
        self.keep = keep
        self.idle: collections.deque[ThreadPoolExecutor] = collections.deque()

    def lend(self) -> ThreadPoolExecutor:
        try:
            return self.idle.pop()
        except IndexError:
            return ThreadPoolExecutor(max_workers=1, thread_name_prefix="request")

    def give_back(self, executor: ThreadPoolExecutor) -> None:
        # Queued behind whatever the request left running (a view still going after its client
        # went away), so no later request is lent a thread that is still busy.
        executor.submit(self._idle_again, executor)

    def _idle_again(self, executor: ThreadPoolExecutor) -> None:
        if len(self.idle) < self.keep:
            self.idle.append(executor)
        else:
            executor.shutdown(wait=False)


class SyncChainASGIHandler(ASGIHandler):
    def __init__(self) -> None:
        super().__init__()
        self.request_threads = RequestThreads()

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            raise ValueError(f"Django can only handle ASGI/HTTP connections, not {scope['type']}.")
        executor = self.request_threads.lend()
        try:
            async with ThreadSensitiveContext(executor=executor):
                await self.handle(scope, receive, send)
        finally:
            self.request_threads.give_back(executor)

    def load_middleware(self, is_async: bool = False) -> None:
        super().load_middleware(is_async=False)

    async def get_response_async(self, request: HttpRequest) -> HttpResponseBase:
        return await sync_to_async(self.get_response, thread_sensitive=True)(request)


def get_asgi_application() -> SyncChainASGIHandler:
    """`django.core.asgi.get_asgi_application` with this handler."""
    django.setup(set_prefix=False)
    return SyncChainASGIHandler()
