"""The fields every routing and telephony log line carries, so a machine reading JSON logs
(LOG_FORMAT=json) can follow one call or one agent: `logger.info(..., extra=call_fields(...))`.
The plain format shows only the message, which names them already."""

from __future__ import annotations

from typing import Any


def call_fields(call_id: str | None = None, agent_id: int | None = None) -> dict[str, Any]:
    """`call_id`: the telephony system's id of the call (what the messages quote);
    `agent_id`: Rapport's id of the agent."""
    return {"call_id": call_id, "agent_id": agent_id}
