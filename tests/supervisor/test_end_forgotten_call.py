"""A supervisor frees an agent whose call the phone system forgot (its hang-up never came):
`POST /api/supervisor/calls/<call_id>/end/` with the reason they type ends the call as `lost`
through the path every end takes, and says who did it and why, on the recorded event and on
the agent's status change. The call's events come signed through the ASGI application."""

import pytest
from django.contrib.auth.models import User
from rest_framework.test import APIClient

from routing.models import Agent, AgentStatusChange, Call, Offer
from routing.states import AgentStatus, CallState, OfferState
from telephony.models import CallEvent
from tests.support.telephony import at, event, ringing, send

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("webhook_secret", "fast_logins")]

REASON = "PBX lost the hang-up; Dana confirmed the caller is gone"


def as_user(user: User) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def end(client: APIClient, call_id: str = "CA1", **body):
    return client.post(f"/api/supervisor/calls/{call_id}/end/", body, format="json")


@pytest.fixture
def dana_stuck_on_a_call(phone_system, queue, make_agent) -> Agent:
    """Dana talks to a caller; the phone system will never send the hang-up."""
    dana = make_agent("dana", extension="1001", status="available")
    send(phone_system, ringing("CA1", at(0)), event("call.answered", "CA1", at(5), agent="1001"))
    return dana


def test_a_supervisor_ends_a_forgotten_call_and_the_agent_wraps_up_audited(
    dana_stuck_on_a_call, supervisor
):
    dana = dana_stuck_on_a_call
    # Releasing her status alone is refused: her status follows the call.
    released = as_user(supervisor).post(
        f"/api/supervisor/agents/{dana.id}/status/", {"status": "available"}, format="json"
    )
    assert released.status_code == 409

    response = end(as_user(supervisor), reason=REASON)

    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["call_id"], body["state"], body["end_reason"]) == ("CA1", "ended", "lost")
    assert body["agent"] == dana.id
    call = Call.objects.get(telephony_call_id="CA1")
    assert (call.state, call.end_reason) == (CallState.ENDED, "lost")
    assert Agent.objects.get(id=dana.id).status == AgentStatus.WRAP_UP
    change = AgentStatusChange.objects.filter(agent=dana).latest("id")
    assert change.status == AgentStatus.WRAP_UP
    assert change.changed_by == supervisor
    assert change.reason == f"call_ended_by_supervisor: {REASON}"
    ended = CallEvent.objects.get(type="call.ended")
    assert ended.applied is True
    assert ended.payload["ended_by_rapport"] == {
        "supervisor": "morgan",
        "supervisor_id": supervisor.id,
        "reason": REASON,
    }


def test_a_call_accepted_but_never_connected_is_abandoned_and_frees_the_agent(
    phone_system, queue, make_agent, supervisor
):
    dana = make_agent("dana", extension="1001", status="available")
    send(phone_system, ringing("CA1", at(0)))
    offer = Offer.objects.get(state=OfferState.OFFERED)
    assert as_user(dana.user).post(f"/api/offers/{offer.id}/accept/").status_code == 200

    response = end(as_user(supervisor), reason="the connect never reached the PBX")

    assert response.status_code == 200, response.content
    assert response.json()["state"] == CallState.ABANDONED
    assert Agent.objects.get(id=dana.id).status == AgentStatus.AVAILABLE
    change = AgentStatusChange.objects.filter(agent=dana).latest("id")
    assert (change.changed_by, change.reason) == (
        supervisor,
        "call_ended_by_supervisor: the connect never reached the PBX",
    )


def test_staff_may_end_a_call_too(dana_stuck_on_a_call):
    staff = User.objects.create_user(username="admin", is_staff=True)

    assert end(as_user(staff), reason=REASON).status_code == 200


def test_the_reason_is_required_and_named(dana_stuck_on_a_call, supervisor):
    client = as_user(supervisor)

    for body in ({}, {"reason": "   "}):
        response = end(client, **body)
        assert response.status_code == 400
        assert "reason" in response.json()["errors"]
    assert Call.objects.get(telephony_call_id="CA1").state == CallState.CONNECTED


def test_an_agent_may_not_end_a_call(dana_stuck_on_a_call):
    response = end(as_user(dana_stuck_on_a_call.user), reason=REASON)

    assert response.status_code == 403
    assert Call.objects.get(telephony_call_id="CA1").state == CallState.CONNECTED


def test_an_unknown_call_is_404_and_a_call_already_over_is_409(
    phone_system, dana_stuck_on_a_call, supervisor
):
    client = as_user(supervisor)

    assert end(client, "CA-nobody", reason=REASON).status_code == 404
    send(phone_system, event("call.ended", "CA1", at(60), reason="completed"))
    over = end(client, reason=REASON)
    assert over.status_code == 409
    assert "call_id" in over.json()["errors"]
    assert Call.objects.get(telephony_call_id="CA1").end_reason == "completed"


def test_the_api_schema_shows_the_endpoint(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()

    operation = schema["paths"]["/api/supervisor/calls/{call_id}/end/"]["post"]
    body = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert schema["components"]["schemas"][body.rsplit("/", 1)[1]]["required"] == ["reason"]
