"""Reads about customers. (caller_context is being built for issues #4/#5/#7.)"""

from __future__ import annotations

from typing import Any


def caller_context(
    *, from_e164: str, customer_ids: list[int], agent_id: int | None
) -> dict[str, Any]:
    """The `caller` object of an offer (see docs/sockets.md): a fixed number of queries."""
    return {"kind": "unknown", "number": from_e164, "customer": None, "candidates": []}
