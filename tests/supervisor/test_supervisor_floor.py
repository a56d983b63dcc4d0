"""The floor's states on the supervisor's screen: why each agent is not ready and for how long,
today's not-ready time per reason, today's abandoned callers to call back, and the last week's
reunion table per queue and per agent."""

from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.utils import timezone
from rest_framework.test import APIClient

from customers.models import ContextAccess
from rapport.asgi import application
from routing.models import Agent, AgentStatusChange, Call, DecisionReason, RoutingDecision
from supervisor import floor, reunion, services, today, wall
from supervisor.figures import day_start
from supervisor.models import CallBack
from tests.support.routing import FAST_PASSWORD_HASHERS
from tests.support.sockets import fresh_channel_layer, socket_headers  # noqa: F401 (fixture)

pytestmark = pytest.mark.django_db

NOON = day_start(timezone.now()) + timedelta(hours=12)
_serial = iter(range(1, 100_000))


def changed(agent: Agent, status: str, at, *, not_ready_reason: str = "") -> None:
    AgentStatusChange.objects.create(
        agent=agent,
        status=status,
        previous_status="available",
        changed_at=at,
        reason="set_by_agent",
        not_ready_reason=not_ready_reason,
    )
    Agent.objects.filter(id=agent.id).update(
        status=status, status_changed_at=at, not_ready_reason=not_ready_reason
    )


def abandoned_call(queue, *, hung_up_at, waited: int, **fields) -> Call:
    return Call.objects.create(
        telephony_call_id=f"CA-ab{next(_serial)}",
        queue=queue,
        state="abandoned",
        created_at=hung_up_at - timedelta(seconds=waited + 2),
        queued_at=hung_up_at - timedelta(seconds=waited),
        ended_at=hung_up_at,
        **fields,
    )


def returning_call(queue, last_agent, *, agent=None, days_ago: float = 1, decisions=()) -> Call:
    created = NOON - timedelta(days=days_ago)
    call = Call.objects.create(
        telephony_call_id=f"CA-rt{next(_serial)}",
        queue=queue,
        last_agent=last_agent,
        agent=agent,
        state="ended" if agent else "abandoned",
        created_at=created,
        queued_at=created,
        connected_at=created + timedelta(seconds=10) if agent else None,
        ended_at=created + timedelta(minutes=3),
    )
    for reason in decisions:
        RoutingDecision.objects.create(call=call, reason=reason, decided_at=created)
    return call


# --- not ready: reason, time in state, today's totals --------------------------------------


def test_each_agent_shows_their_reason_and_since_when(make_agent):
    dana = make_agent("dana", status="available")
    changed(dana, "break", NOON - timedelta(minutes=12), not_ready_reason="lunch")

    (row,) = floor.agent_rows(NOON)

    assert row["status"] == "break"
    assert row["not_ready_reason"] == "lunch"
    assert row["status_label"] == "Not ready — Lunch"
    assert row["status_changed_at"] == (NOON - timedelta(minutes=12)).isoformat()


def test_todays_not_ready_time_is_totalled_per_reason_from_the_history(make_agent):
    dana = make_agent("dana", status="available")
    sam = make_agent("sam", status="available")
    midnight = day_start(NOON)
    # Lunch that began before midnight counts from midnight: 30 minutes today.
    changed(dana, "break", midnight - timedelta(minutes=50), not_ready_reason="lunch")
    changed(dana, "available", midnight + timedelta(minutes=30))
    changed(dana, "break", NOON - timedelta(hours=2), not_ready_reason="coaching")
    changed(
        dana, "break", NOON - timedelta(hours=2) + timedelta(minutes=20), not_ready_reason="lunch"
    )
    changed(dana, "available", NOON - timedelta(hours=1))
    # Sam missed a call an hour ago and is still not ready: counted up to now.
    changed(sam, "break", NOON - timedelta(hours=1), not_ready_reason="missed_call")
    # Yesterday's spells and what happens after "now" do not count.
    changed(sam, "break", NOON + timedelta(minutes=5), not_ready_reason="training")

    figures = wall.figures(NOON)

    rows = {row["display_name"]: row for row in figures["agents"]}
    assert rows["Dana"]["not_ready_today_seconds"] == {"lunch": 30 * 60 + 40 * 60, "coaching": 1200}
    assert rows["Sam"]["not_ready_today_seconds"] == {"missed_call": 3600}
    totals = {row["reason"]: row for row in figures["totals"]["not_ready_today"]}
    assert [row["reason"] for row in figures["totals"]["not_ready_today"]] == [
        "break",
        "lunch",
        "coaching",
        "training",
        "missed_call",
    ]
    assert totals["lunch"]["seconds"] == 70 * 60
    assert totals["lunch"]["label"] == "Lunch"
    assert totals["missed_call"] == {
        "reason": "missed_call",
        "label": "Missed call",
        "seconds": 3600,
        "agents_now": 0,  # at NOON, Sam's later training spell is in the row's present state
    }
    assert totals["break"]["seconds"] == 0


def test_today_starts_at_midnight_where_the_deployment_is(make_agent, settings):
    settings.TIME_ZONE = "Pacific/Auckland"
    now = timezone.now()
    local_midnight = timezone.localtime(now, ZoneInfo("Pacific/Auckland")).replace(
        hour=0, minute=0, second=0, microsecond=0
    )
    dana = make_agent("dana", status="available")
    changed(dana, "break", local_midnight - timedelta(minutes=10), not_ready_reason="training")
    changed(dana, "available", local_midnight + timedelta(minutes=20))

    assert floor.not_ready_today(now)[dana.id] == {"training": 20 * 60}


# --- abandoned callers ------------------------------------------------------------------------


def test_todays_abandoned_callers_are_listed_as_consent_allows(queue, make_agent, make_customer):
    dana = make_agent("dana")
    maya = make_customer("Maya Chen", consent="open")
    ruth = make_customer("Ruth Fischer", phones=("+14155550999",), consent="closed")
    named = abandoned_call(
        queue,
        hung_up_at=NOON - timedelta(minutes=5),
        waited=47,
        customer=maya,
        from_e164="+14155550123",
        last_agent=dana,
    )
    abandoned_call(
        queue,
        hung_up_at=NOON - timedelta(minutes=10),
        waited=12,
        customer=ruth,
        from_e164="+14155550999",
    )
    abandoned_call(
        queue, hung_up_at=NOON - timedelta(minutes=20), waited=3, from_e164="+14155550777"
    )
    abandoned_call(queue, hung_up_at=NOON - timedelta(days=1), waited=9, from_e164="+1415555")

    shown = today.abandoned_today(NOON, caller_names=True)

    assert [row["caller"] for row in shown] == ["Maya Chen", "Anonymous caller", "Unknown caller"]
    assert [row["number"] for row in shown] == ["+14155550123", "+14155550999", "+14155550777"]
    first = shown[0]
    assert first["call_id"] == named.telephony_call_id
    assert first["waited_seconds"] == 47
    assert first["hung_up_at"] == (NOON - timedelta(minutes=5)).isoformat()
    assert first["last_agent"] == {"id": dana.id, "display_name": "Dana"}
    assert first["called_back"] is None
    assert shown[1]["last_agent"] is None
    # Figures for a script: times and counts, no names or numbers.
    figures = today.abandoned_today(NOON)
    assert [row["caller"] for row in figures] == [
        "Identified caller",
        "Anonymous caller",
        "Unknown caller",
    ]
    assert {row["number"] for row in figures} == {None}


def test_the_abandoned_list_is_recorded_as_a_supervisor_look(
    as_supervisor, supervisor, queue, make_customer
):
    maya = make_customer("Maya Chen", consent="open")
    ruth = make_customer("Ruth Fischer", phones=("+14155550999",), consent="closed")
    now = timezone.now()
    first = abandoned_call(
        queue, hung_up_at=now - timedelta(seconds=30), waited=20, customer=maya, from_e164="+1"
    )
    second = abandoned_call(
        queue, hung_up_at=now - timedelta(seconds=20), waited=20, customer=ruth, from_e164="+2"
    )

    response = as_supervisor.get("/api/supervisor/abandoned/")
    as_supervisor.get("/api/supervisor/abandoned/")

    assert response.status_code == 200
    assert [row["caller"] for row in response.json()["abandoned"]] == [
        "Anonymous caller",
        "Maya Chen",
    ]
    # Ruth's name stays hidden but her number is shown: both are looks, each recorded once.
    assert set(
        ContextAccess.objects.filter(user=supervisor).values_list(
            "customer_id", "call_id", "reason"
        )
    ) == {(maya.id, first.id, "supervisor"), (ruth.id, second.id, "supervisor")}


def test_the_page_records_the_abandoned_callers_it_shows(client, supervisor, queue, make_customer):
    maya = make_customer("Maya Chen", consent="conditional")
    call = abandoned_call(
        queue,
        hung_up_at=timezone.now() - timedelta(seconds=30),
        waited=20,
        customer=maya,
        from_e164="+14155550123",
    )
    client.force_login(supervisor)

    html = client.get("/supervisor/").content.decode()

    assert "+14155550123" in html
    assert ContextAccess.objects.filter(
        user=supervisor, customer=maya, call_id=call.id, reason="supervisor"
    ).exists()


def test_marking_a_caller_called_back_records_who_and_when_once(as_supervisor, supervisor, queue):
    call = abandoned_call(
        queue, hung_up_at=timezone.now() - timedelta(seconds=30), waited=20, from_e164="+1"
    )
    before = timezone.now()

    response = as_supervisor.post(f"/api/supervisor/calls/{call.telephony_call_id}/called-back/")

    assert response.status_code == 201, response.content
    assert response.json()["called_back_by"] == "morgan"
    call_back = CallBack.objects.get(call=call)
    assert call_back.called_back_by == supervisor
    assert call_back.called_back_at >= before - timedelta(seconds=5)
    (row,) = as_supervisor.get("/api/supervisor/abandoned/").json()["abandoned"]
    assert row["called_back"]["by"] == "morgan"
    again = as_supervisor.post(f"/api/supervisor/calls/{call.telephony_call_id}/called-back/")
    assert again.status_code == 409
    assert "morgan already called" in again.json()["errors"]["call_id"][0]
    assert CallBack.objects.count() == 1


def test_only_an_abandoned_call_can_be_marked_and_an_unknown_one_is_404(as_supervisor, queue):
    answered = Call.objects.create(telephony_call_id="CA-answered", queue=queue, state="ended")

    assert as_supervisor.post("/api/supervisor/calls/CA-nope/called-back/").status_code == 404
    refused = as_supervisor.post("/api/supervisor/calls/CA-answered/called-back/")
    assert refused.status_code == 409
    assert "call_id" in refused.json()["errors"]
    assert not CallBack.objects.filter(call=answered).exists()


def test_only_supervisors_see_the_list_mark_callers_or_read_the_table(make_agent, queue):
    dana = make_agent("dana")
    call = abandoned_call(
        queue, hung_up_at=timezone.now() - timedelta(seconds=30), waited=20, from_e164="+1"
    )
    as_agent = APIClient()
    as_agent.force_authenticate(dana.user)
    anonymous = APIClient()

    for client in (as_agent, anonymous):
        assert client.get("/api/supervisor/abandoned/").status_code in (401, 403)
        assert client.get("/api/supervisor/reunion/").status_code in (401, 403)
        marked = client.post(f"/api/supervisor/calls/{call.telephony_call_id}/called-back/")
        assert marked.status_code in (401, 403)
    assert not CallBack.objects.exists()
    assert not ContextAccess.objects.exists()


# --- the week's reunion table -----------------------------------------------------------------


def test_the_reunion_table_shows_waited_for_and_sent_to_queue_per_queue_and_agent(
    queue, make_agent, django_assert_num_queries
):
    from routing.models import Queue

    express = Queue.objects.create(
        slug="express", name="Express", last_agent_wait_seconds=30, hold_averse_wait_seconds=5
    )
    dana = make_agent("dana")
    sam = make_agent("sam")
    waited = [DecisionReason.LAST_AGENT_BUSY_WAITED]
    # Loyalty: Dana's callers.
    returning_call(queue, dana, agent=dana, decisions=[DecisionReason.LAST_AGENT])
    returning_call(queue, dana, agent=dana, decisions=waited)
    returning_call(
        queue, dana, agent=sam, decisions=waited + [DecisionReason.LAST_AGENT_WAIT_EXPIRED]
    )
    returning_call(queue, dana, agent=None, decisions=waited)  # hung up while held
    returning_call(queue, dana, agent=sam, decisions=[DecisionReason.LAST_AGENT_BUSY_NOT_HELD])
    returning_call(queue, dana, agent=sam, decisions=[DecisionReason.LAST_AGENT_UNAVAILABLE])
    # Express: Sam's callers.
    returning_call(express, sam, agent=sam, decisions=waited, days_ago=6.5)
    returning_call(express, sam, agent=dana, decisions=[DecisionReason.LAST_AGENT_BUSY_NOT_HELD])
    # Too old, and a first-time caller: neither counts.
    returning_call(queue, dana, agent=dana, decisions=waited, days_ago=7.5)
    Call.objects.create(telephony_call_id="CA-new", queue=queue, state="ended", created_at=NOON)

    with django_assert_num_queries(1):
        table = reunion.reunion_table(NOON)

    queues = {row["slug"]: row for row in table["queues"]}
    loyalty = queues["loyalty"]
    assert loyalty["returning"] == 6
    assert loyalty["reunited"] == 2
    assert loyalty["reunion_rate"] == round(2 / 6, 4)
    assert (loyalty["waited_for"], loyalty["waited_for_reunited"]) == (3, 1)
    assert loyalty["waited_for_share"] == 0.5
    assert loyalty["waited_for_reached_rate"] == round(1 / 3, 4)
    assert (loyalty["sent_to_queue"], loyalty["sent_to_queue_share"]) == (1, round(1 / 6, 4))
    assert loyalty["agent_unavailable"] == 1
    assert queues["express"]["last_agent_wait_seconds"] == 30
    assert queues["express"]["hold_averse_wait_seconds"] == 5
    assert (queues["express"]["returning"], queues["express"]["waited_for_reunited"]) == (2, 1)
    agents = {row["display_name"]: row for row in table["agents"]}
    assert (agents["Dana"]["returning"], agents["Dana"]["reunited"]) == (6, 2)
    assert (agents["Sam"]["returning"], agents["Sam"]["sent_to_queue"]) == (2, 1)
    assert table["total"]["returning"] == 8
    assert table["total"]["waited_for"] == 4
    assert table["days"] == 7


def test_the_wall_and_the_table_count_the_same_callers_the_same_way(queue, make_agent):
    dana = make_agent("dana")
    sam = make_agent("sam")
    waited = [DecisionReason.LAST_AGENT_BUSY_WAITED]
    returning_call(queue, dana, agent=dana, days_ago=0.1, decisions=waited)
    returning_call(queue, dana, agent=sam, days_ago=0.1, decisions=[DecisionReason.LAST_AGENT])
    returning_call(queue, dana, agent=None, days_ago=0.1, decisions=waited)
    still_waiting = returning_call(queue, dana, days_ago=0.05)
    held_then_missed = returning_call(
        queue, dana, days_ago=0.05, decisions=waited + [DecisionReason.LAST_AGENT_WAIT_EXPIRED]
    )
    Call.objects.filter(id__in=[still_waiting.id, held_then_missed.id]).update(state="queued")

    wall_figures = wall.figures(NOON)["totals"]["reunion"]
    table = reunion.reunion_table(NOON, days=1)["total"]

    assert (wall_figures["reunited"], table["reunited"]) == (1, 1)
    # A caller still waiting who already missed their agent counts as missed in both.
    assert (wall_figures["still_waiting"], table["still_waiting"]) == (1, 1)
    assert wall_figures["callers_with_last_agent"] == table["returning"] - table["still_waiting"]
    assert wall_figures["rate"] == table["reunion_rate"] == round(1 / 4, 4)
    assert wall_figures["not_reunited"]["busy_past_wait"] == 1


def test_the_reunion_table_api_takes_a_number_of_days_and_names_a_bad_one(as_supervisor, queue):
    assert as_supervisor.get("/api/supervisor/reunion/").json()["days"] == 7
    assert as_supervisor.get("/api/supervisor/reunion/?days=30").json()["days"] == 30
    refused = as_supervisor.get("/api/supervisor/reunion/?days=0")
    assert refused.status_code == 400
    assert "days" in refused.json()["errors"]
    assert as_supervisor.get("/api/supervisor/reunion/?days=week").status_code == 400


@pytest.mark.django_db(transaction=True)
@pytest.mark.timeout(60)
def test_the_wall_socket_lists_abandoned_callers_and_hears_of_a_call_back(
    supervisor, queue, make_agent, make_customer, settings
):
    settings.PASSWORD_HASHERS = FAST_PASSWORD_HASHERS
    make_agent("dana", status="available")
    ruth = make_customer("Ruth Fischer", consent="closed")
    call = abandoned_call(
        queue,
        hung_up_at=timezone.now() - timedelta(seconds=30),
        waited=20,
        customer=ruth,
        from_e164="+14155550123",
    )
    headers = socket_headers(supervisor)

    async def frames():
        socket = WebsocketCommunicator(application, "/ws/supervisor/", headers=headers)
        await socket.connect()
        snapshot = await socket.receive_json_from(timeout=5)
        await database_sync_to_async(services.mark_called_back)(
            telephony_call_id=call.telephony_call_id, user=supervisor
        )
        for _ in range(10):
            frame = await socket.receive_json_from(timeout=20)
            if frame["abandoned"][0]["called_back"]:
                break
        await socket.disconnect()
        return snapshot, frame

    snapshot, frame = async_to_sync(frames)()

    (row,) = snapshot["abandoned"]
    assert (row["caller"], row["number"]) == ("Anonymous caller", "+14155550123")
    assert frame["abandoned"][0]["called_back"]["by"] == "morgan"
    assert list(ContextAccess.objects.values_list("customer_id", "call_id", "reason")) == [
        (ruth.id, call.id, "supervisor")
    ]
