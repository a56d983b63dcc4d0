"""Rapport's telephony endpoints, as the phone system calls them: signed events in, signed pulls.

A pull signs its method and path in the body's place, with a fresh `webhook-id` each time.

An event is retried with the same `webhook-id` (Rapport's idempotency key) when the network
fails, Rapport is briefly away (5xx) or it asks to slow down (429), as a real phone system would.
"""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import httpx
from standardwebhooks import Webhook

from simulator.signing import signed_headers, signed_request_headers

logger = logging.getLogger(__name__)

EVENTS_PATH = "/api/telephony/events/"
RETRY_DELAYS_SECONDS = (0.25, 1.0, 3.0)
LONGEST_RETRY_AFTER_SECONDS = 5.0


class TelephonyApi:
    def __init__(self, *, http: httpx.AsyncClient, webhook: Webhook) -> None:
        self.http = http
        self.webhook = webhook

    async def post_event(self, event_type: str, call_id: str, **fields: Any) -> bool:
        """POST one event; True once Rapport accepted it (202)."""
        body = json.dumps(
            {
                "type": event_type,
                "call_id": call_id,
                "occurred_at": datetime.now(UTC).isoformat(),
                **fields,
                "metadata": {"simulated": True},
            }
        )
        msg_id = signed_headers(self.webhook, body)["webhook-id"]
        for delay in (*RETRY_DELAYS_SECONDS, None):
            response = await self._send_event(body, msg_id)
            if response is not None and response.status_code == 202:
                return True
            if response is not None and not _worth_retrying(response):
                logger.warning(
                    "%s %s refused: %s %s",
                    call_id,
                    event_type,
                    response.status_code,
                    response.text[:200],
                )
                return False
            if delay is None:
                break
            await asyncio.sleep(_retry_delay(response, delay))
        logger.warning("%s %s not delivered: Rapport did not accept it", call_id, event_type)
        return False

    async def call_instruction(self, call_id: str) -> dict[str, Any] | None:
        """The call's state and, once decided, the agent to connect (None: not known yet)."""
        request = self.http.build_request("GET", f"/api/telephony/calls/{quote(call_id, safe='')}/")
        request.headers.update(signed_request_headers(self.webhook, "GET", request.url.path))
        try:
            response = await self.http.send(request)
        except httpx.HTTPError as failed:
            logger.debug("%s not pulled: %s", call_id, failed)
            return None
        if response.status_code != 200:
            return None
        return response.json()

    async def _send_event(self, body: str, msg_id: str) -> httpx.Response | None:
        headers = {
            "content-type": "application/json",
            **signed_headers(self.webhook, body, msg_id=msg_id),
        }
        try:
            return await self.http.post(EVENTS_PATH, content=body, headers=headers)
        except httpx.HTTPError as failed:
            logger.debug("event %s not sent: %s", msg_id, failed)
            return None


def _worth_retrying(response: httpx.Response) -> bool:
    return response.status_code == 429 or response.status_code >= 500


def _retry_delay(response: httpx.Response | None, delay: float) -> float:
    retry_after = response.headers.get("retry-after", "") if response is not None else ""
    try:
        return min(max(float(retry_after), delay), LONGEST_RETRY_AFTER_SECONDS)
    except ValueError:
        return delay
