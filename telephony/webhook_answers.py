"""Every answer Rapport gives a telephony system, counted by endpoint and status
(`rapport_webhook_responses_total`): one ASGI wrapper in front of the whole HTTP application,
so the webhook's intake (answered on the event loop, before Django), the body limit's 413 and
Django's views are counted alike. The endpoint is the provider's folder, never the path: the
Generic CTI path holds its token."""

from __future__ import annotations

from typing import Any

from django.urls import reverse

from infrastructure.metrics import WEBHOOK_RESPONSES

# The first path segment under the telephony mount, and the endpoint it is counted as.
ENDPOINTS = {
    "events": "signed_events",
    "calls": "signed_events",
    "twilio": "twilio",
    "cti": "cti",
    "route-hint": "route_hint",
}


class CountWebhookAnswers:
    def __init__(self, app: Any) -> None:
        self.app = app
        self.mount = reverse("telephony-events").removesuffix("events/")

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        endpoint = self._endpoint(scope)
        if endpoint is None:
            await self.app(scope, receive, send)
            return

        async def counting_send(message: dict) -> None:
            if message["type"] == "http.response.start":
                WEBHOOK_RESPONSES.labels(endpoint=endpoint, status=str(message["status"])).inc()
            await send(message)

        await self.app(scope, receive, counting_send)

    def _endpoint(self, scope: dict) -> str | None:
        if scope["type"] != "http" or not scope["path"].startswith(self.mount):
            return None
        first = scope["path"][len(self.mount) :].split("/", 1)[0]
        return ENDPOINTS.get(first)
