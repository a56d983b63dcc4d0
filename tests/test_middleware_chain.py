"""Under the ASGI server the middleware chain runs in the request's one thread."""

from asgiref.sync import AsyncToSync, SyncToAsync, iscoroutinefunction
from django.core.handlers.asgi import ASGIHandler


def _unwrapped(handler):
    while hasattr(handler, "__wrapped__") and not isinstance(handler, (SyncToAsync, AsyncToSync)):
        handler = handler.__wrapped__
    return handler


def test_no_middleware_runs_async_under_asgi():
    # An async middleware hands each sync step to a thread and back: a dozen switches a request.
    top = _unwrapped(ASGIHandler()._middleware_chain)
    assert isinstance(top, SyncToAsync)
    middleware = _unwrapped(top.func)
    seen = []
    while hasattr(middleware, "get_response"):
        seen.append(type(middleware).__name__)
        assert not iscoroutinefunction(middleware), f"{seen[-1]} runs async"
        middleware = _unwrapped(middleware.get_response)
    assert "SessionMiddleware" in seen
    assert seen[-1] == "SyncMiddlewareChain"
    # Only below the whole chain does it go back to the event loop, to reach the view.
    assert isinstance(middleware, AsyncToSync)
