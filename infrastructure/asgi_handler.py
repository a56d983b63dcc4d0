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

import asyncio
import collections
import contextlib
from concurrent.futures import ThreadPoolExecutor

import django
from asgiref.sync import ThreadSensitiveContext, sync_to_async
from django.core import signals
from django.core.exceptions import RequestAborted
from django.core.handlers.asgi import ASGIHandler, get_script_prefix
from django.http import FileResponse, HttpResponseBase
from django.urls import set_script_prefix

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

    async def handle(self, scope, receive, send) -> None:
        try:
            body_file = await self.read_body(receive)
        except RequestAborted:
            return
        set_script_prefix(get_script_prefix(scope))
        try:
            response = await sync_to_async(self.respond, thread_sensitive=True)(scope, body_file)
            if response.streaming:
                await self.send_stream(response, receive, send)
            else:
                # A client gone by now is no error: the server drops what is sent to it.
                await self.send_response(response, send)
        finally:
            body_file.close()

    def respond(self, scope, body_file) -> HttpResponseBase:
        """All of a request's synchronous part in one hand-off to its thread: Django's handler
        makes three (request_started, the chain and view, then the response's close)."""
        signals.request_started.send(sender=self.__class__, scope=scope)
        request, response = self.create_request(scope, body_file)
        if request is not None:
            response = self.get_response(request)
            response._handler_class = self.__class__
            if isinstance(response, FileResponse):
                response.block_size = self.chunk_size
        if not response.streaming:
            # The body is in memory: closing (request_finished, which hands the database
            # connection back) need not wait for it to be sent.
            response.close()
        return response

    async def send_stream(self, response: HttpResponseBase, receive, send) -> None:
        """A streamed body is sent as Django sends it: stopped if the client goes away."""
        sending = asyncio.create_task(self.send_response(response, send))
        listening = asyncio.create_task(self.listen_for_disconnect(receive))
        try:
            await asyncio.wait([sending, listening], return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (listening, sending):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, RequestAborted):
                    await task
            await sync_to_async(response.close, thread_sensitive=True)()

    def load_middleware(self, is_async: bool = False) -> None:
        super().load_middleware(is_async=False)


def get_asgi_application() -> SyncChainASGIHandler:
    """`django.core.asgi.get_asgi_application` with this handler."""
    django.setup(set_prefix=False)
    return SyncChainASGIHandler()
