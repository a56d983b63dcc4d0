"""Keeps the middleware chain synchronous under the ASGI server.

Django runs each middleware in the mode of the one below it when it can. The lowest middleware
that can run async (django-axes) would make every middleware above it async, and Django's own
middleware (`MiddlewareMixin`) then hands each `process_request` and `process_response` to a
thread and back: a dozen thread switches per request, the largest part of a plain view's cost
on uvicorn. Below them all, this sync-only pass-through makes the whole chain run in the
request's one thread: one switch in, one to the view.
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse


class SyncMiddlewareChain:
    sync_capable = True
    async_capable = False

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)
