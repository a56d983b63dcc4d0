"""What a screen calls a status, a call's state or a routing reason is written once, on the
server, and each page carries it in its config: the texts on the page are Python's."""

import json
import re

import pytest
from django.contrib.auth.models import Group, User

from routing.models import DecisionReason

pytestmark = pytest.mark.django_db

STATUSES = {
    "offline": "Offline",
    "available": "Available",
    "busy": "On a call",
    "wrap_up": "Wrap-up",
    "break": "Not ready",
}


def json_block(html: str, block_id: str):
    found = re.search(rf'<script id="{block_id}" type="application/json">(.*?)</script>', html)
    assert found, f"no {block_id} block on the page"
    return json.loads(found.group(1))


@pytest.fixture
def supervisor(db) -> User:
    user = User.objects.create_user(username="morgan", password="pw-morgan")
    user.groups.add(Group.objects.get_or_create(name="supervisor")[0])
    return user


def test_the_console_gets_its_status_and_reason_texts_from_the_server(client, make_agent):
    client.force_login(make_agent("dana").user)

    labels = json_block(client.get("/").content.decode(), "console-config")["labels"]

    assert labels["statuses"] == STATUSES
    assert labels["call_states"]["connecting"] == "Connecting…"
    assert labels["call_states"]["connected"] == "On call"
    assert labels["call_states"]["abandoned"] == "Caller hung up"
    assert labels["offer_reasons"]["last_agent"] == "You were their last agent"
    assert labels["offer_reasons"]["last_agent_unavailable"] == "Their last agent is away"
    assert labels["offer_reasons"]["moved_by_supervisor"] == "Moved here by a supervisor"
    assert set(labels["offer_reasons"]) <= set(DecisionReason.values)
    assert labels["offer_outcomes"] == {
        "declined": "You declined the call; it went back to the queue.",
        "timed_out": "The call was not answered in time and went back to the queue.",
        "withdrawn": "The call stopped ringing (the caller hung up or a colleague took it).",
    }


def test_the_dashboard_names_every_reason_its_figures_count(client, supervisor, queue, settings):
    settings.NOT_READY_REASONS = ["lunch", "coaching"]
    client.force_login(supervisor)

    html = client.get("/supervisor/").content.decode()

    labels = json_block(html, "supervisor-labels")
    figures = json_block(html, "supervisor-figures")
    assert labels["statuses"] == STATUSES
    assert labels["not_ready_reasons"] == [
        {"code": "lunch", "label": "Lunch"},
        {"code": "coaching", "label": "Coaching"},
    ]
    # In the order the wall lists them, one for each count in the figures.
    assert list(labels["not_reunited"]) == list(figures["totals"]["reunion"]["not_reunited"])
    assert list(labels["not_reunited"].values()) == [
        "Agent still busy after the wait",
        "Agent busy; caller not held (avoids holding, in a rush)",
        "Agent offline or not ready",
        "Agent declined",
        "Offer not answered in time",
        "Caller chose the next colleague",
        "Called back by a colleague, or not reached",
        "Caller hung up first",
        "Other (e.g. moved)",
    ]
