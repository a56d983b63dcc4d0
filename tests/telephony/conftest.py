"""What the call back tests of a phone system of our own format share: Dana, busy, Maya's last
agent; Maya, closed consent; a stand-in for the phone system's control URL."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import ThreadingHTTPServer

import pytest

from routing.models import Agent
from routing.states import AgentStatus
from tests.support.routing import past_call
from tests.support.telephony import TelephonyControl

MAYA = "+14155550123"


@pytest.fixture
def dana(make_agent, queue) -> Agent:
    queue.last_agent_wait_seconds = 60
    queue.save()
    return make_agent("dana", extension="1001", status=AgentStatus.BUSY)


@pytest.fixture
def maya(make_customer, dana, queue):
    customer = make_customer("Maya Chen", phones=[MAYA], consent="closed")
    past_call(customer=customer, agent=dana, queue=queue, days_ago=2)
    return customer


@pytest.fixture
def control_url() -> Iterator[str]:
    TelephonyControl.script.clear()
    TelephonyControl.received.clear()
    server = ThreadingHTTPServer(("127.0.0.1", 0), TelephonyControl)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/control"
    server.shutdown()
