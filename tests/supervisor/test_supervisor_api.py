"""The dashboard page, its JSON figures and the supervisor's audited actions."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from routing.models import AgentStatusChange, Call, DecisionReason, Offer, Queue, RoutingDecision
from routing.states import OfferState
from tests.support.routing import tasks_published

pytestmark = pytest.mark.django_db


def waiting_call(queue: Queue, call_id: str = "CA-wait", *, seconds_ago: int = 30) -> Call:
    now = timezone.now()
    return Call.objects.create(
        telephony_call_id=call_id,
        queue=queue,
        state="queued",
        queued_at=now - timedelta(seconds=seconds_ago),
    )


def test_it_serves_a_queue_figures_as_json(as_supervisor, queue, make_agent):
    make_agent("dana", status="available")
    make_agent("sam", status="busy")
    call = waiting_call(queue, seconds_ago=42)

    response = as_supervisor.get("/api/queues/loyalty/stats/")

    assert response.status_code == 200
    body = response.json()
    assert body["slug"] == "loyalty"
    assert body["waiting"] == 1
    assert body["waiting_calls"][0]["call_id"] == "CA-wait"
    assert body["longest_waiting_since"] == call.queued_at.isoformat()
    assert body["agents"]["available"] == 1 and body["agents"]["busy"] == 1
    assert set(body["today"]) >= {
        "answered",
        "abandoned",
        "service_level",
        "average_speed_of_answer_seconds",
    }
    assert set(body["reunion"]) >= {"rate", "reunited", "not_reunited"}
    assert body["series"]["bucket_minutes"] == 15


def test_a_wallboard_script_reads_the_figures_with_a_token(supervisor, queue):
    token = Token.objects.create(user=supervisor)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")

    assert client.get("/api/queues/loyalty/stats/").status_code == 200
    assert client.get("/api/supervisor/").json()["queues"][0]["slug"] == "loyalty"


def test_an_unknown_queue_is_404(as_supervisor):
    assert as_supervisor.get("/api/queues/nope/stats/").status_code == 404


def test_agents_are_refused_the_figures_page_and_actions(client, make_agent, queue):
    dana = make_agent("dana")
    api = APIClient()
    api.force_authenticate(dana.user)
    client.force_login(dana.user)

    assert api.get("/api/queues/loyalty/stats/").status_code == 403
    assert api.get("/api/supervisor/").status_code == 403
    assert client.get("/supervisor/").status_code == 403
    response = api.post(f"/api/supervisor/agents/{dana.id}/status/", {"status": "offline"})
    assert response.status_code == 403
    assert APIClient().get("/api/queues/loyalty/stats/").status_code in (401, 403)


def test_the_page_is_for_supervisors_and_carries_its_first_figures(client, supervisor, queue):
    client.force_login(supervisor)

    response = client.get("/supervisor/")

    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="supervisor-figures" type="application/json"' in html
    assert '<script type="module" src="/static/supervisor/dashboard.js">' in html
    # No inline script: the only <script> tags carry a src or JSON data.
    for tag in html.split("<script")[1:]:
        opening = tag.split(">", 1)[0]
        assert "src=" in opening or 'type="application/json"' in opening


def test_a_visitor_who_is_not_logged_in_is_sent_to_login(client):
    response = client.get("/supervisor/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_a_supervisor_releases_a_stuck_agent_and_it_is_audited(
    as_supervisor, supervisor, make_agent
):
    stuck = make_agent("dana", status="busy")  # busy, yet no call: a lost hang-up

    response = as_supervisor.post(
        f"/api/supervisor/agents/{stuck.id}/status/",
        {"status": "offline", "reason": "stuck after a dropped call"},
        format="json",
    )

    assert response.status_code == 200, response.content
    assert response.json()["status"] == "offline"
    stuck.refresh_from_db()
    assert stuck.status == "offline"
    change = AgentStatusChange.objects.get(agent=stuck)
    assert change.changed_by == supervisor
    assert (change.previous_status, change.status) == ("busy", "offline")
    assert change.reason == "set_by_supervisor: stuck after a dropped call"


def test_a_supervisor_sets_an_available_agent_on_break(as_supervisor, supervisor, make_agent):
    dana = make_agent("dana", status="available")

    response = as_supervisor.post(
        f"/api/supervisor/agents/{dana.id}/status/", {"status": "break"}, format="json"
    )

    assert response.status_code == 200, response.content
    change = AgentStatusChange.objects.get(agent=dana)
    assert (change.status, change.changed_by, change.reason) == (
        "break",
        supervisor,
        "set_by_supervisor",
    )


def test_an_agent_talking_to_a_caller_is_not_taken_off_the_call(as_supervisor, make_agent, queue):
    dana = make_agent("dana", status="busy")
    Call.objects.create(
        telephony_call_id="CA-talk",
        queue=queue,
        agent=dana,
        state="connected",
        connected_at=timezone.now(),
    )

    response = as_supervisor.post(
        f"/api/supervisor/agents/{dana.id}/status/", {"status": "offline"}, format="json"
    )

    assert response.status_code == 409
    assert "status" in response.json()["errors"]
    dana.refresh_from_db()
    assert dana.status == "busy"
    assert not AgentStatusChange.objects.exists()


def test_a_status_outside_the_choices_names_the_field(as_supervisor, make_agent):
    dana = make_agent("dana")

    response = as_supervisor.post(
        f"/api/supervisor/agents/{dana.id}/status/", {"status": "busy"}, format="json"
    )

    assert response.status_code == 400
    assert "status" in response.json()["errors"]
    assert (
        as_supervisor.post(
            "/api/supervisor/agents/999999/status/", {"status": "offline"}, format="json"
        ).status_code
        == 404
    )
    assert (
        as_supervisor.post(
            f"/api/supervisor/agents/{10**30}/status/", {"status": "offline"}, format="json"
        ).status_code
        == 404
    )


def test_a_supervisor_moves_a_waiting_call_and_it_is_audited(
    as_supervisor, supervisor, queue, django_capture_on_commit_callbacks
):
    vip = Queue.objects.create(slug="vip", name="VIP")
    call = waiting_call(queue)
    queued_at = call.queued_at

    with tasks_published() as published, django_capture_on_commit_callbacks(execute=True):
        response = as_supervisor.post(
            "/api/supervisor/calls/CA-wait/move/",
            {"queue": "vip", "reason": "VIP customer"},
            format="json",
        )

    assert response.status_code == 200, response.content
    assert response.json() == {"call_id": "CA-wait", "state": "queued", "queue": "vip"}
    call.refresh_from_db()
    assert call.queue == vip
    assert call.queued_at == queued_at  # to the caller it is one wait
    assert published == [("routing.route_call", (call.pk,))]  # the router takes it up in VIP
    decision = RoutingDecision.objects.get(call=call)
    assert decision.reason == DecisionReason.MOVED_BY_SUPERVISOR
    assert decision.detail["from_queue"] == "loyalty"
    assert decision.detail["to_queue"] == "vip"
    assert decision.detail["moved_by"] == "morgan"
    assert decision.detail["reason"] == "VIP customer"


def test_moving_a_ringing_call_withdraws_the_offer(
    as_supervisor, queue, make_agent, django_capture_on_commit_callbacks
):
    Queue.objects.create(slug="vip", name="VIP")
    dana = make_agent("dana", status="available")
    call = waiting_call(queue)
    Call.objects.filter(id=call.id).update(state="offered")
    offer = Offer.objects.create(
        call=call, agent=dana, expires_at=timezone.now() + timedelta(seconds=15)
    )

    with django_capture_on_commit_callbacks(execute=True):
        response = as_supervisor.post(
            "/api/supervisor/calls/CA-wait/move/", {"queue": "vip"}, format="json"
        )

    assert response.status_code == 200, response.content
    offer.refresh_from_db()
    assert offer.state == OfferState.WITHDRAWN
    call.refresh_from_db()
    assert (call.state, call.queue.slug) == ("queued", "vip")


def test_only_a_waiting_call_can_be_moved(as_supervisor, queue, make_agent):
    Queue.objects.create(slug="vip", name="VIP")
    dana = make_agent("dana", status="busy")
    Call.objects.create(
        telephony_call_id="CA-talk",
        queue=queue,
        agent=dana,
        state="connected",
        connected_at=timezone.now(),
    )

    talking = as_supervisor.post(
        "/api/supervisor/calls/CA-talk/move/", {"queue": "vip"}, format="json"
    )
    unknown_queue = as_supervisor.post(
        "/api/supervisor/calls/CA-talk/move/", {"queue": "nowhere"}, format="json"
    )
    unknown_call = as_supervisor.post(
        "/api/supervisor/calls/CA-none/move/", {"queue": "vip"}, format="json"
    )

    assert talking.status_code == 409
    assert "call_id" in talking.json()["errors"]
    assert unknown_queue.status_code == 400
    assert "queue" in unknown_queue.json()["errors"]
    assert unknown_call.status_code == 404
    assert not RoutingDecision.objects.exists()


def test_both_status_endpoints_follow_one_rule_for_a_stuck_agent(as_supervisor, make_agent):
    stuck = make_agent("dana", status="busy")  # busy, yet no call: a lost hang-up
    talking = make_agent("sam", status="busy")
    Call.objects.create(telephony_call_id="CA-talk", agent=talking, state="connected")

    released = as_supervisor.patch(
        f"/api/agents/{stuck.id}/", {"status": "available"}, format="json"
    )
    refused = as_supervisor.patch(f"/api/agents/{talking.id}/", {"status": "break"}, format="json")

    assert released.status_code == 200, released.content
    assert released.json()["status"] == "available"
    assert AgentStatusChange.objects.get(agent=stuck).reason == "set_by_supervisor"
    assert refused.status_code == 409
    assert refused.json()["errors"] == {
        "status": ["This agent is talking to a caller; their status follows the call."]
    }


def test_staff_without_the_supervisor_group_are_shown_the_dashboard_link(client, make_agent):
    dana = make_agent("dana")
    User.objects.filter(id=dana.user_id).update(is_staff=True)
    client.force_login(dana.user)

    page = client.get("/").content.decode()

    assert 'href="/supervisor/"' in page
