"""REST for routing: a call's routing story, agents and their status, queues, offer actions."""

import pytest
from django.contrib.auth.models import Group, User
from django.utils import timezone
from rest_framework.test import APIClient

from customers.models import AccessReason, ContextAccess
from routing import router
from routing.models import Agent, AgentStatusChange, Call, Offer, Queue
from routing.states import AgentStatus, CallState, OfferState
from tests.support.routing import arrive, past_call

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_logins")]


@pytest.fixture
def supervisor() -> User:
    user = User.objects.create_user("morgan")
    user.groups.add(Group.objects.get_or_create(name="supervisor")[0])
    return user


def client_for(user: User | None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


@pytest.fixture
def routed_call(make_agent, make_customer, queue):
    """Maya's last agent Dana is on break, so the call went to Sam."""
    dana = make_agent("dana", status="break")
    sam = make_agent("sam", status="available")
    maya = make_customer("Maya Chen")
    past_call(customer=maya, agent=dana, queue=queue)
    call = arrive(queue=queue, customer=maya, publish=False)
    router.route_call(call.id)
    return call, dana, sam


def test_a_call_shows_its_routing_decisions_with_their_reasons(
    routed_call, supervisor, django_assert_max_num_queries
):
    call, dana, sam = routed_call

    with django_assert_max_num_queries(8):
        response = client_for(supervisor).get(f"/api/calls/{call.telephony_call_id}/")

    assert response.status_code == 200
    body = response.json()
    assert body["state"] == "offered"
    assert body["queue"] == "loyalty"
    assert body["last_agent"] == {"id": dana.id, "display_name": "Dana"}
    assert body["current_offer"]["agent"] == {"id": sam.id, "display_name": "Sam"}
    assert [(d["reason"], d["agent"]["id"]) for d in body["decisions"]] == [
        ("last_agent_unavailable", dana.id),
        ("longest_idle", sam.id),
    ]
    assert body["decisions"][0]["detail"] == {"why": "break"}
    assert body["decisions"][1]["caller_waited_ms"] is not None


def test_a_call_is_shown_only_to_supervisors_and_the_agents_it_reached(routed_call, make_agent):
    call, dana, sam = routed_call
    lee = make_agent("lee")
    path = f"/api/calls/{call.telephony_call_id}/"

    assert client_for(sam.user).get(path).status_code == 200
    assert client_for(lee.user).get(path).status_code == 403
    assert client_for(None).get(path).status_code in (401, 403)
    assert client_for(sam.user).get("/api/calls/CA-nope/").status_code == 404


def test_an_agent_sees_their_call_while_on_it_and_in_its_wrap_up_and_no_longer(routed_call):
    """The same moments the caller's record opens to them (privacy.selectors), one rule."""
    call, dana, sam = routed_call
    path = f"/api/calls/{call.telephony_call_id}/"
    Offer.objects.filter(call=call).update(state=OfferState.WITHDRAWN)
    logged_before = ContextAccess.objects.count()

    Call.objects.filter(id=call.id).update(state=CallState.CONNECTED, agent=sam)
    assert client_for(sam.user).get(path).status_code == 200
    assert client_for(dana.user).get(path).status_code == 403

    Call.objects.filter(id=call.id).update(state=CallState.ENDED, ended_at=timezone.now())
    Agent.objects.filter(id=sam.id).update(status=AgentStatus.WRAP_UP, wrap_up_call=call)
    assert client_for(sam.user).get(path).status_code == 200

    Agent.objects.filter(id=sam.id).update(status=AgentStatus.AVAILABLE, wrap_up_call=None)
    assert client_for(sam.user).get(path).status_code == 403
    logged = ContextAccess.objects.order_by("id")[logged_before:]
    assert [(row.user_id, row.reason) for row in logged] == [(sam.user.id, AccessReason.CALL)] * 2


def test_an_agent_accepts_their_offer_over_http(routed_call):
    call, dana, sam = routed_call
    offer = Offer.objects.get(call=call, state=OfferState.OFFERED)

    response = client_for(sam.user).post(f"/api/offers/{offer.id}/accept/")

    assert response.status_code == 200
    assert response.json() == {
        "offer_id": offer.id,
        "call_id": call.telephony_call_id,
        "state": "accepted",
    }
    sam.refresh_from_db()
    assert sam.status == AgentStatus.BUSY


def test_an_offer_ringing_for_someone_else_or_no_more_cannot_be_taken(routed_call, make_agent):
    call, dana, sam = routed_call
    offer = Offer.objects.get(call=call, state=OfferState.OFFERED)

    stolen = client_for(make_agent("lee").user).post(f"/api/offers/{offer.id}/accept/")
    declined = client_for(sam.user).post(f"/api/offers/{offer.id}/decline/")
    again = client_for(sam.user).post(f"/api/offers/{offer.id}/accept/")

    assert stolen.status_code == 409
    assert stolen.json()["errors"] == {"offer_id": ["That offer is no longer ringing."]}
    assert declined.status_code == 200 and declined.json()["state"] == "declined"
    assert again.status_code == 409


def test_an_agent_goes_on_break_and_the_change_is_recorded(make_agent):
    dana = make_agent("dana", status="available")

    response = client_for(dana.user).patch(
        f"/api/agents/{dana.id}/", {"status": "break"}, format="json"
    )

    assert response.status_code == 200
    assert response.json()["status"] == "break"
    change = AgentStatusChange.objects.get(agent=dana)
    assert (change.previous_status, change.status, change.changed_by) == (
        "available",
        "break",
        dana.user,
    )


def test_status_changes_are_refused_with_the_field_named(make_agent):
    dana = make_agent("dana", status="available")
    lee = make_agent("lee", status="available")

    busy = client_for(dana.user).patch(f"/api/agents/{dana.id}/", {"status": "busy"}, format="json")
    nonsense = client_for(dana.user).patch(
        f"/api/agents/{dana.id}/", {"status": "asleep"}, format="json"
    )
    others = client_for(lee.user).patch(
        f"/api/agents/{dana.id}/", {"status": "offline"}, format="json"
    )

    assert busy.status_code == 400 and "status" in busy.json()["errors"]
    assert nonsense.status_code == 400 and "status" in nonsense.json()["errors"]
    assert others.status_code == 403


def test_an_agent_on_a_call_is_told_not_now_and_cannot_set_themselves_free(make_agent):
    dana = make_agent("dana", status="busy")

    response = client_for(dana.user).patch(
        f"/api/agents/{dana.id}/", {"status": "available"}, format="json"
    )

    assert response.status_code == 409
    assert response.json() == {
        "detail": "You are on a call; your status changes when it ends.",
        "errors": {"status": ["You are on a call; your status changes when it ends."]},
    }


def test_a_supervisor_takes_an_agent_off_break(make_agent, supervisor):
    dana = make_agent("dana", status="break")

    response = client_for(supervisor).patch(
        f"/api/agents/{dana.id}/", {"status": "available", "reason": "back"}, format="json"
    )

    assert response.status_code == 200
    assert AgentStatusChange.objects.get(agent=dana).changed_by == supervisor


def test_an_agent_ends_wrap_up_over_http(make_agent):
    dana = make_agent("dana", status="wrap_up")

    response = client_for(dana.user).post(f"/api/agents/{dana.id}/ready/")
    twice = client_for(dana.user).post(f"/api/agents/{dana.id}/ready/")

    assert response.status_code == 200 and response.json()["status"] == "available"
    assert twice.status_code == 200
    assert AgentStatusChange.objects.filter(agent=dana).count() == 1


def test_supervisors_create_agents_and_queues(supervisor, queue):
    client = client_for(supervisor)

    agent = client.post(
        "/api/agents/",
        {
            "username": "nia",
            "display_name": "Nia Obi",
            "telephony_identity": "ext-204",
            "queues": ["loyalty"],
        },
        format="json",
    )
    created = client.post(
        "/api/queues/",
        {
            "slug": "vip",
            "name": "VIP",
            "numbers": ["(800) 555-0199"],
            "last_agent_wait_seconds": 30,
            "offer_timeout_seconds": 10,
        },
        format="json",
    )

    assert agent.status_code == 201, agent.json()
    assert agent.json()["queues"] == ["loyalty"] and agent.json()["status"] == "offline"
    assert Agent.objects.get(telephony_identity="ext-204").user.groups.filter(name="agent")
    assert created.status_code == 201, created.json()
    assert Queue.objects.get(slug="vip").numbers == ["+18005550199"]
    listed = client.get("/api/queues/").json()
    assert [q["slug"] for q in listed] == ["loyalty", "vip"]
    assert [a["username"] for a in client.get("/api/agents/").json()] == ["nia"]


def test_bad_agent_and_queue_input_names_the_field(supervisor, make_agent, queue):
    make_agent("dana")
    client = client_for(supervisor)

    taken = client.post(
        "/api/agents/",
        {"username": "dana", "display_name": "D", "telephony_identity": "x", "queues": ["nope"]},
        format="json",
    )
    bad_queue = client.post(
        "/api/queues/",
        {"slug": "loyalty", "name": "L", "numbers": ["call me"], "offer_timeout_seconds": 0},
        format="json",
    )

    assert taken.status_code == 400
    assert set(taken.json()["errors"]) == {"username", "queues"}
    assert bad_queue.status_code == 400
    assert set(bad_queue.json()["errors"]) == {"slug", "numbers", "offer_timeout_seconds"}


def test_only_supervisors_create_agents_and_queues(make_agent):
    dana = make_agent("dana")

    assert client_for(dana.user).post("/api/queues/", {}, format="json").status_code == 403
    assert client_for(dana.user).post("/api/agents/", {}, format="json").status_code == 403
