"""Channel-layer group names, shared by whoever sends and whoever listens."""

import hashlib


def agent_group(agent_id: int) -> str:
    return f"agent.{agent_id}"


SUPERVISORS_GROUP = "supervisors"


def session_group(session_key: str) -> str:
    """Every socket opened with one login session; the key itself stays out of Redis."""
    return f"session.{hashlib.sha256(session_key.encode()).hexdigest()[:32]}"
