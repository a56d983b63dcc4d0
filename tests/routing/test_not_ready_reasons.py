"""Not ready, with a reason: `break` stays the status the API and sockets accept, and carries a
reason from the deployment's list (settings.NOT_READY_REASONS) chosen by the agent, a supervisor
for them, or the router after a missed offer."""

import os
import subprocess
import sys
from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.contrib.auth.models import Group, User
from django.utils import timezone
from rest_framework.test import APIClient

from rapport.asgi import application
from routing import offers, router
from routing.checks import check_not_ready_reasons
from routing.models import Agent, AgentStatusChange, Offer
from routing.states import OfferState
from tests.support.routing import FAST_PASSWORD_HASHERS, arrive
from tests.support.sockets import fresh_channel_layer, socket_headers  # noqa: F401 (fixture)


@pytest.fixture
def dana(make_agent) -> Agent:
    return make_agent("dana", status="available")


@pytest.fixture
def as_dana(dana) -> APIClient:
    client = APIClient()
    client.force_authenticate(dana.user)
    return client


@pytest.fixture
def as_supervisor(db) -> APIClient:
    user = User.objects.create_user(username="morgan")
    user.groups.add(Group.objects.get_or_create(name="supervisor")[0])
    client = APIClient()
    client.force_authenticate(user)
    return client


def latest_change(agent: Agent) -> AgentStatusChange:
    return agent.status_changes.order_by("-changed_at", "-id").first()


@pytest.mark.django_db
def test_an_agent_goes_not_ready_for_lunch_and_the_label_says_so(as_dana, dana):
    response = as_dana.patch(
        f"/api/agents/{dana.id}/", {"status": "break", "not_ready_reason": "lunch"}, format="json"
    )

    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["not_ready_reason"]) == ("break", "lunch")
    assert body["status_label"] == "Not ready — Lunch"
    change = latest_change(dana)
    # The two reasons keep their meanings: what caused the change, and what the agent is doing.
    assert (change.reason, change.not_ready_reason) == ("set_by_agent", "lunch")


@pytest.mark.django_db
def test_break_without_a_reason_is_still_accepted_with_the_first_reason(as_dana, dana):
    response = as_dana.patch(f"/api/agents/{dana.id}/", {"status": "break"}, format="json")

    assert response.status_code == 200
    assert response.json()["not_ready_reason"] == "break"
    assert response.json()["status_label"] == "Not ready — Break"


@pytest.mark.django_db
@pytest.mark.parametrize(
    "body",
    [
        {"status": "break", "not_ready_reason": "nap"},
        # The router's own reason: nobody chooses "missed call".
        {"status": "break", "not_ready_reason": "missed_call"},
        {"status": "available", "not_ready_reason": "lunch"},
    ],
)
def test_an_unknown_or_misplaced_reason_is_400_naming_the_field(as_dana, dana, body):
    response = as_dana.patch(f"/api/agents/{dana.id}/", body, format="json")

    assert response.status_code == 400
    assert "not_ready_reason" in response.json()["errors"]
    dana.refresh_from_db()
    assert (dana.status, dana.not_ready_reason) == ("available", "")
    assert not dana.status_changes.exists()


@pytest.mark.django_db
def test_changing_only_the_reason_is_a_change_and_time_in_state_starts_again(as_dana, dana):
    as_dana.patch(
        f"/api/agents/{dana.id}/",
        {"status": "break", "not_ready_reason": "coaching"},
        format="json",
    )
    dana.refresh_from_db()
    coaching_since = dana.status_changed_at

    as_dana.patch(
        f"/api/agents/{dana.id}/", {"status": "break", "not_ready_reason": "lunch"}, format="json"
    )

    dana.refresh_from_db()
    assert dana.not_ready_reason == "lunch"
    assert dana.status_changed_at > coaching_since
    change = latest_change(dana)
    assert (change.previous_status, change.status, change.not_ready_reason) == (
        "break",
        "break",
        "lunch",
    )
    # Back to available: the reason goes with the break.
    as_dana.patch(f"/api/agents/{dana.id}/", {"status": "available"}, format="json")
    dana.refresh_from_db()
    assert dana.not_ready_reason == ""


@pytest.mark.django_db
def test_a_supervisor_sets_a_reason_and_their_typed_why_stays_apart(as_supervisor, dana):
    response = as_supervisor.post(
        f"/api/supervisor/agents/{dana.id}/status/",
        {"status": "break", "not_ready_reason": "coaching", "reason": "one-to-one at 3"},
        format="json",
    )

    assert response.status_code == 200
    assert response.json()["not_ready_reason"] == "coaching"
    change = latest_change(dana)
    assert change.reason == "set_by_supervisor: one-to-one at 3"
    assert change.not_ready_reason == "coaching"

    refused = as_supervisor.post(
        f"/api/supervisor/agents/{dana.id}/status/",
        {"status": "break", "not_ready_reason": "holiday"},
        format="json",
    )
    assert refused.status_code == 400
    assert "not_ready_reason" in refused.json()["errors"]


@pytest.mark.django_db
def test_each_deployment_lists_its_own_reasons(as_dana, dana, settings):
    settings.NOT_READY_REASONS = ["team_meeting", "lunch"]

    refused = as_dana.patch(
        f"/api/agents/{dana.id}/",
        {"status": "break", "not_ready_reason": "coaching"},
        format="json",
    )
    by_default = as_dana.patch(f"/api/agents/{dana.id}/", {"status": "break"}, format="json")

    assert refused.status_code == 400
    assert by_default.json()["status_label"] == "Not ready — Team meeting"


@pytest.mark.django_db
def test_an_offer_that_rings_out_makes_the_agent_not_ready_with_missed_call(dana, queue):
    call = arrive(queue=queue, number="+14155550123", publish=False)
    router.route_call(call.id)
    offer = Offer.objects.get(call=call, state=OfferState.OFFERED)
    Offer.objects.filter(id=offer.id).update(expires_at=timezone.now() - timedelta(seconds=1))

    assert offers.time_out_offer(offer_id=offer.id)

    dana.refresh_from_db()
    assert (dana.status, dana.not_ready_reason) == ("break", "missed_call")
    change = latest_change(dana)
    assert (change.reason, change.not_ready_reason) == ("offer_timed_out", "missed_call")


@pytest.mark.django_db(transaction=True)
@pytest.mark.timeout(60)
def test_the_socket_takes_break_with_a_reason_and_refuses_an_unknown_one(dana, settings):
    settings.PASSWORD_HASHERS = FAST_PASSWORD_HASHERS
    headers = socket_headers(dana.user)

    async def next_message(socket, kind):
        for _ in range(10):
            message = await socket.receive_json_from(timeout=5)
            if message["type"] == kind:
                return message
        raise AssertionError(f"no {kind!r} message")

    async def scenario():
        socket = WebsocketCommunicator(application, "/ws/agent/", headers=headers)
        await socket.connect()
        await next_message(socket, "state")
        await socket.send_json_to(
            {"type": "set_status", "status": "break", "not_ready_reason": "training"}
        )
        status = await next_message(socket, "status")
        await socket.send_json_to(
            {"type": "set_status", "status": "break", "not_ready_reason": "snooze"}
        )
        error = await next_message(socket, "error")
        await socket.disconnect()
        reconnected = WebsocketCommunicator(application, "/ws/agent/", headers=headers)
        await reconnected.connect()
        state = await next_message(reconnected, "state")
        await reconnected.disconnect()
        return status, error, state

    status, error, state = async_to_sync(scenario)()

    assert (status["status"], status["not_ready_reason"]) == ("break", "training")
    assert status["status_label"] == "Not ready — Training"
    assert "not_ready_reason" in error["message"]
    assert state["agent"]["not_ready_reason"] == "training"
    assert state["agent"]["status_label"] == "Not ready — Training"


def test_the_list_comes_from_the_environment():
    printed = subprocess.run(
        [
            sys.executable,
            "-c",
            "import django; django.setup(); from django.conf import settings;"
            " print(','.join(settings.NOT_READY_REASONS))",
        ],
        cwd=settings.BASE_DIR,
        env={
            "PATH": os.environ["PATH"],
            "DJANGO_SETTINGS_MODULE": "rapport.settings",
            "NOT_READY_REASONS": "lunch,team_meeting",
        },
        capture_output=True,
        text=True,
        check=True,
    )
    assert printed.stdout.strip() == "lunch,team_meeting"


def test_a_reason_that_is_not_a_code_is_refused_at_start(settings):
    settings.NOT_READY_REASONS = ["lunch", "Team meeting"]

    (error,) = check_not_ready_reasons(None)

    assert error.id == "rapport.E003"
    assert "'Team meeting'" in error.msg
