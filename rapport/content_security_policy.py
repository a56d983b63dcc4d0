"""A Content-Security-Policy on every response: scripts only from our own files, never inline.

Django 5.2 has no CSP of its own; this is the whole of what Rapport needs. A view that needs a
different policy sets the header itself (see `allow_api_docs_assets`); it is then left alone.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.conf import settings
from django.http import HttpRequest, HttpResponse

HEADER = "Content-Security-Policy"


def build_policy(directives: dict[str, list[str]]) -> str:
    return "; ".join(" ".join([name, *sources]) for name, sources in directives.items())


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.policy = build_policy(settings.CONTENT_SECURITY_POLICY)

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if HEADER not in response:
            response[HEADER] = self.policy
        return response


def allow_api_docs_assets(view: Callable) -> Callable:
    """The Swagger page loads its script and styles from the CDN drf-spectacular names; its own
    setup script is a separate file (SpectacularSwaggerSplitView), so inline script stays out."""
    cdn = settings.CONTENT_SECURITY_POLICY_API_DOCS_SOURCES
    directives = dict(settings.CONTENT_SECURITY_POLICY)
    directives["script-src"] = [*directives.get("script-src", ["'self'"]), *cdn]
    directives["style-src"] = [*directives.get("style-src", ["'self'"]), *cdn]
    directives["img-src"] = [*directives.get("img-src", ["'self'"]), *cdn]
    policy = build_policy(directives)

    @wraps(view)
    def with_policy(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        response = view(request, *args, **kwargs)
        response[HEADER] = policy
        return response

    return with_policy
