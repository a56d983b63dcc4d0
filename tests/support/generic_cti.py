"""The Generic CTI tests' phone system: the py-zammad-cti package's CTIClient, run in its own
environment (.venv-cti, made by scripts/ensure-cti-client: it pins an older `requests` than the
test tools use) in a subprocess that posts to a real server."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
CTI_PYTHON = REPO / ".venv-cti" / "bin" / "python"
DRIVER = Path(__file__).resolve().parent / "cti_client.py"
# As strong as telephony.checks asks: a live server refuses to start with a weak one.
TOKEN = "cti-test-token-6f1c2b9e4d7a"


@pytest.fixture(scope="session")
def cti_client_python() -> Path:
    """.venv-cti's Python, the environment made on first use (make test makes it first)."""
    subprocess.run([REPO / "scripts" / "ensure-cti-client", sys.executable], check=True)
    return CTI_PYTHON


def cti_url(base_url: str, token: str = TOKEN) -> str:
    return f"{base_url}/api/telephony/cti/{token}/"


def send(url: str, *calls: tuple[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Each `(method, keyword arguments)` sent by one CTIClient, in order; each answer's
    status and body."""
    finished = subprocess.run(
        [CTI_PYTHON, DRIVER],
        input=json.dumps({"url": url, "calls": [list(call) for call in calls]}),
        capture_output=True,
        text=True,
        timeout=120,
    )
    lines = [line for line in finished.stdout.splitlines() if line.startswith("RESULTS ")]
    assert finished.returncode == 0 and lines, finished.stdout + finished.stderr
    return json.loads(lines[-1].removeprefix("RESULTS "))


def _inbound(call_id: str, caller: str, to: str, fields: dict[str, Any]) -> dict[str, Any]:
    return {"_from": caller, "to": to, "direction": "in", "call_id": call_id, **fields}


def new_call(call_id: str, *, caller: str, to: str = "+18005550100", **fields) -> tuple:
    return ("new_call", _inbound(call_id, caller, to, fields))


def answer(call_id: str, *, caller: str, to: str = "+18005550100", **fields) -> tuple:
    return ("answer", _inbound(call_id, caller, to, fields))


def hangup(call_id: str, *, caller: str, cause: str, to: str = "+18005550100", **fields) -> tuple:
    return ("hangup", _inbound(call_id, caller, to, {"cause": cause, **fields}))
