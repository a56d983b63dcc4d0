"""Rapport's URLs, and the trivial Django view the webhook benchmarks compare against."""

from django.http import HttpRequest, JsonResponse
from django.urls import include, path
from django.views.decorators.http import require_GET

from bench import PING_PATH


@require_GET
def ping(request: HttpRequest) -> JsonResponse:
    """A plain Django view through the same middleware as every other: no database, no auth."""
    return JsonResponse({"status": "ok"})


urlpatterns = [
    path(PING_PATH.removeprefix("/"), ping, name="bench-ping"),
    path("", include("rapport.urls")),
]
