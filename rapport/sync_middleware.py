"""The ASGI server's Django handler, with the middleware chain and the view run synchronously,
in the request's one thread.

Django's ASGI handler builds an async middleware chain. Every middleware here is sync (or, like
django-axes, either), so Django adapts: the chain is handed to the request's thread, and at its
bottom `_get_response_async` is handed back to the event loop to resolve the URL, which hands
the (sync) view to the thread again. Each hand-off waits for the event loop, which under load is
busy with hundreds of agent sockets: a plain view cost 3 ms of CPU, most of it switching, and
the telephony webhook waited for the loop twice per event. Built sync, the chain and the view
run in one hand-off, as under WSGI; the ASGI server still serves the request and its sockets.
"""

from __future__ import annotations

import django
from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIHandler
from django.http import HttpRequest, HttpResponseBase


class SyncChainASGIHandler(ASGIHandler):
    def load_middleware(self, is_async: bool = False) -> None:
        super().load_middleware(is_async=False)

    async def get_response_async(self, request: HttpRequest) -> HttpResponseBase:
        return await sync_to_async(self.get_response, thread_sensitive=True)(request)


def get_asgi_application() -> SyncChainASGIHandler:
    """`django.core.asgi.get_asgi_application` with this handler."""
    django.setup(set_prefix=False)
    return SyncChainASGIHandler()
