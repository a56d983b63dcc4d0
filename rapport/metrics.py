"""`GET /metrics`: Prometheus' text format, for the monitoring's scraper only.

Off (404) unless METRICS_TOKEN is set; then a request must carry `Authorization: Bearer
<METRICS_TOKEN>`, compared in constant time. The proxy serves the path on an internal address
only besides (docs/monitoring.md)."""

from __future__ import annotations

import hmac

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.views.decorators.http import require_GET

from infrastructure.metrics import scrape
from supervisor.metrics import FloorCollector

_BEARER = "bearer "


@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    token = settings.METRICS_TOKEN
    if not token:
        raise Http404("Metrics are off: METRICS_TOKEN is not set.")
    sent = request.headers.get("Authorization", "")
    if not sent:
        return _refused(401, "Send Authorization: Bearer <METRICS_TOKEN>.")
    scheme, offered = sent[: len(_BEARER)], sent[len(_BEARER) :].strip()
    if scheme.lower() != _BEARER or not hmac.compare_digest(offered.encode(), token.encode()):
        return _refused(403, "Wrong metrics token.")
    body, content_type = scrape([FloorCollector()])
    return HttpResponse(body, content_type=content_type)


def _refused(status: int, detail: str) -> HttpResponse:
    response = HttpResponse(detail + "\n", status=status, content_type="text/plain")
    if status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
    return response
