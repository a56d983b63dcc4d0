"""The supervisor's figures, computed on a constructed day of calls."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from routing.models import Agent, Call, DecisionReason, Offer, Queue, RoutingDecision
from routing.states import OfferState
from supervisor import floor, today, wall
from supervisor.figures import day_start

pytestmark = pytest.mark.django_db

# Noon of today, so every constructed moment lies inside today whatever time the suite runs.
NOON = day_start(timezone.now()) + timedelta(hours=12)


def at(minutes: float) -> timezone.datetime:
    """A moment today, `minutes` after 10:00."""
    return NOON - timedelta(hours=2) + timedelta(minutes=minutes)


_serial = iter(range(1, 100_000))


def make_call(
    queue: Queue,
    *,
    queued: timezone.datetime,
    answered_after: float | None = None,
    abandoned_after: float | None = None,
    agent: Agent | None = None,
    last_agent: Agent | None = None,
    state: str | None = None,
    customer=None,
) -> Call:
    connected_at = None
    if answered_after is not None:
        connected_at = queued + timedelta(seconds=answered_after)
    ended_at = None
    if abandoned_after is not None:
        state, ended_at = "abandoned", queued + timedelta(seconds=abandoned_after)
    elif connected_at is not None:
        state = state or "ended"
        ended_at = connected_at + timedelta(minutes=4) if state == "ended" else None
    return Call.objects.create(
        telephony_call_id=f"CA{next(_serial)}",
        queue=queue,
        customer=customer,
        agent=agent if connected_at else None,
        last_agent=last_agent,
        state=state or "queued",
        created_at=queued - timedelta(seconds=2),
        ringing_at=queued - timedelta(seconds=2),
        queued_at=queued,
        connected_at=connected_at,
        ended_at=ended_at,
    )


def decide(call: Call, reason: str, *, agent: Agent | None = None, minute: float = 0) -> None:
    RoutingDecision.objects.create(
        call=call, reason=reason, agent=agent, decided_at=call.queued_at + timedelta(minutes=minute)
    )


def queue_figures(slug: str, now=NOON) -> dict:
    return next(q for q in wall.figures(now)["queues"] if q["slug"] == slug)


def test_it_counts_service_level_against_each_queue_target(queue, make_agent):
    dana = make_agent("dana")
    make_call(queue, queued=at(0), answered_after=5, agent=dana)
    make_call(queue, queued=at(10), answered_after=20, agent=dana)
    make_call(queue, queued=at(20), answered_after=45, agent=dana)
    make_call(queue, queued=at(30), abandoned_after=30)

    today = queue_figures("loyalty")["today"]

    assert today["answered"] == 3
    assert today["answered_within_target"] == 2
    assert today["abandoned"] == 1
    # A caller who gave up counts against the service level: 2 of 4 finished waits.
    assert today["service_level"] == 0.5
    assert today["abandonment_rate"] == 0.25


def test_a_queue_with_a_longer_target_counts_a_slower_answer_as_within(queue, make_agent):
    patient = Queue.objects.create(slug="patient", name="Patient", service_level_seconds=60)
    dana = make_agent("dana", queues=[queue, patient])
    make_call(queue, queued=at(0), answered_after=45, agent=dana)
    make_call(patient, queued=at(0), answered_after=45, agent=dana)

    assert queue_figures("loyalty")["today"]["service_level"] == 0.0
    assert queue_figures("patient")["today"]["service_level"] == 1.0


def test_it_averages_the_speed_of_answer_over_answered_calls_only(queue, make_agent):
    dana = make_agent("dana")
    make_call(queue, queued=at(0), answered_after=4, agent=dana)
    make_call(queue, queued=at(5), answered_after=16, agent=dana)
    make_call(queue, queued=at(9), abandoned_after=300)

    assert queue_figures("loyalty")["today"]["average_speed_of_answer_seconds"] == 10.0


def test_yesterday_does_not_count_today(queue, make_agent):
    dana = make_agent("dana")
    make_call(queue, queued=at(0) - timedelta(days=1), answered_after=90, agent=dana)
    make_call(queue, queued=at(0) - timedelta(days=1), abandoned_after=10)

    today = queue_figures("loyalty")["today"]

    assert (today["answered"], today["abandoned"], today["service_level"]) == (0, 0, None)
    assert today["average_speed_of_answer_seconds"] is None


def test_it_lists_waiting_callers_longest_first_with_their_wait_start(queue, make_agent):
    dana = make_agent("dana", status="busy")
    later = make_call(queue, queued=NOON - timedelta(seconds=30))
    earlier = make_call(queue, queued=NOON - timedelta(seconds=95), state="offered")
    sticky = make_call(queue, queued=NOON - timedelta(seconds=10), last_agent=dana)
    Call.objects.filter(id=sticky.id).update(last_agent_wait_until=NOON + timedelta(seconds=10))
    make_call(queue, queued=NOON - timedelta(minutes=5), answered_after=20, agent=dana)

    figures = queue_figures("loyalty")

    assert figures["waiting"] == 3
    assert figures["offered"] == 1
    assert [c["call_id"] for c in figures["waiting_calls"]] == [
        earlier.telephony_call_id,
        later.telephony_call_id,
        sticky.telephony_call_id,
    ]
    assert figures["longest_waiting_since"] == earlier.queued_at.isoformat()
    assert figures["waiting_calls"][2]["held_for_last_agent"] == "Dana"
    assert figures["waiting_calls"][0]["held_for_last_agent"] is None


def test_it_counts_a_queue_agents_by_status(queue, make_agent):
    other = Queue.objects.create(slug="vip", name="VIP")
    make_agent("dana", status="available")
    make_agent("sam", status="busy")
    make_agent("alex", status="wrap_up")
    make_agent("priya", status="break")
    make_agent("lee", status="offline")
    make_agent("kim", status="available", queues=[other])

    assert queue_figures("loyalty")["agents"] == {
        "available": 1,
        "busy": 1,
        "wrap_up": 1,
        "break": 1,
        "offline": 1,
    }
    assert queue_figures("vip")["agents"]["available"] == 1


def test_the_reunion_rate_says_how_many_reached_their_agent_and_why_not(queue, make_agent):
    dana = make_agent("dana", status="available")
    sam = make_agent("sam", status="available")

    make_call(queue, queued=at(0), answered_after=3, agent=dana, last_agent=dana)
    make_call(queue, queued=at(1), answered_after=12, agent=dana, last_agent=dana)
    make_call(queue, queued=at(2), answered_after=3, agent=dana)  # no last agent: not counted

    busy = make_call(queue, queued=at(3), answered_after=25, agent=sam, last_agent=dana)
    decide(busy, DecisionReason.LAST_AGENT_BUSY_WAITED, agent=dana)
    decide(busy, DecisionReason.LAST_AGENT_WAIT_EXPIRED, agent=dana, minute=0.3)

    away = make_call(queue, queued=at(4), answered_after=3, agent=sam, last_agent=dana)
    decide(away, DecisionReason.LAST_AGENT_UNAVAILABLE, agent=dana)

    declined = make_call(queue, queued=at(5), answered_after=9, agent=sam, last_agent=dana)
    decide(declined, DecisionReason.LAST_AGENT, agent=dana)
    decide(declined, DecisionReason.LAST_AGENT_DECLINED, agent=dana, minute=0.1)

    unanswered = make_call(queue, queued=at(6), answered_after=30, agent=sam, last_agent=dana)
    decide(unanswered, DecisionReason.LAST_AGENT, agent=dana)
    decide(unanswered, DecisionReason.OFFER_TIMED_OUT, agent=dana, minute=0.25)

    # Sam's offer timing out is not why Dana's caller missed Dana: she was offline first.
    offline_then = make_call(queue, queued=at(7), answered_after=40, agent=sam, last_agent=dana)
    decide(offline_then, DecisionReason.OFFER_TIMED_OUT, agent=sam)
    decide(offline_then, DecisionReason.LAST_AGENT_UNAVAILABLE, agent=dana, minute=0.1)

    hung_up = make_call(queue, queued=at(8), abandoned_after=8, last_agent=dana)
    decide(hung_up, DecisionReason.LAST_AGENT_BUSY_WAITED, agent=dana)

    in_a_rush = make_call(queue, queued=at(9), answered_after=2, agent=sam, last_agent=dana)
    decide(in_a_rush, DecisionReason.LAST_AGENT_BUSY_NOT_HELD, agent=dana)

    make_call(queue, queued=NOON - timedelta(seconds=5), last_agent=dana)  # still waiting

    reunion = queue_figures("loyalty")["reunion"]

    assert reunion["callers_with_last_agent"] == 9
    assert reunion["reunited"] == 2
    assert reunion["rate"] == round(2 / 9, 4)
    assert reunion["still_waiting"] == 1
    assert reunion["not_reunited"] == {
        "busy_past_wait": 1,
        "not_held": 1,
        "offline_or_break": 2,
        "declined": 1,
        "timed_out": 1,
        "chose_next": 0,
        "callback_not_by_own_agent": 0,
        "caller_hung_up": 1,
        "other": 0,
    }
    assert wall.figures(NOON)["totals"]["reunion"] == reunion


def test_agents_show_status_current_caller_by_name_and_calls_today_but_no_handle_time(
    queue, make_agent, make_customer
):
    dana = make_agent("dana", status="busy")
    Agent.objects.filter(id=dana.id).update(status_changed_at=NOON - timedelta(minutes=3))
    sam = make_agent("sam", status="available")
    maya = make_customer("Maya Chen", consent="open")
    make_call(queue, queued=at(0), answered_after=5, agent=dana)
    make_call(queue, queued=at(30), answered_after=5, agent=dana)
    make_call(
        queue,
        queued=NOON - timedelta(minutes=3),
        answered_after=4,
        agent=dana,
        state="connected",
        customer=maya,
    )
    ringing = make_call(queue, queued=NOON - timedelta(seconds=5), state="offered")
    Offer.objects.create(
        call=ringing, agent=sam, state=OfferState.OFFERED, expires_at=NOON + timedelta(seconds=10)
    )

    rows = {row["display_name"]: row for row in floor.agent_rows(NOON, caller_names=True)}

    assert rows["Dana"]["status"] == "busy"
    assert rows["Dana"]["status_label"] == "On a call"
    assert rows["Dana"]["status_changed_at"] == (NOON - timedelta(minutes=3)).isoformat()
    assert rows["Dana"]["call"]["caller"] == "Maya Chen"
    assert set(rows["Dana"]["call"]) == {"call_id", "state", "caller"}
    assert rows["Dana"]["calls_today"] == 3
    assert rows["Sam"]["ringing"] is True
    assert rows["Sam"]["call"] is None
    assert rows["Sam"]["queues"] == ["loyalty"]
    flat = str(rows)
    assert "handle" not in flat and "duration" not in flat and "talk" not in flat


def test_an_erased_customer_is_not_named_on_the_wall(queue, make_agent, make_customer):
    dana = make_agent("dana", status="busy")
    erased = make_customer("Former Customer", erased_at=NOON - timedelta(days=1))
    make_call(queue, queued=at(0), answered_after=4, agent=dana, state="connected", customer=erased)

    (row,) = floor.agent_rows(NOON)

    assert row["call"]["caller"] == "Erased customer"


def test_the_day_series_shows_waiting_calls_and_service_level_per_quarter_hour(queue, make_agent):
    dana = make_agent("dana")
    start = day_start(NOON)
    ten = start + timedelta(hours=10)
    make_call(queue, queued=ten + timedelta(minutes=1), answered_after=10, agent=dana)
    make_call(queue, queued=ten + timedelta(minutes=2), answered_after=60, agent=dana)
    # Waits across the 10:15 mark, answered at 10:16.
    make_call(queue, queued=ten + timedelta(minutes=14), answered_after=120, agent=dana)
    # Still waiting at noon.
    make_call(queue, queued=NOON - timedelta(minutes=1))

    series = today.day_series(NOON)
    points = {p["at"]: p for p in series["points"]}

    assert series["bucket_minutes"] == 15
    assert len(series["points"]) == 12 * 4 + 1  # every slot from midnight, noon included
    first = points[ten.isoformat()]
    assert (first["answered"], first["service_level"]) == (3, round(1 / 3, 4))
    assert first["waiting"] == 1  # the 10:14 caller, at 10:15
    assert points[(ten + timedelta(minutes=15)).isoformat()]["waiting"] == 0
    assert points[NOON.isoformat()]["waiting"] == 1


def test_the_dashboard_uses_a_fixed_number_of_queries_for_50_queues_and_500_agents(
    django_assert_max_num_queries,
):
    queues = Queue.objects.bulk_create(Queue(slug=f"q{n}", name=f"Queue {n}") for n in range(50))
    users = User.objects.bulk_create(User(username=f"agent{n}") for n in range(500))
    agents = Agent.objects.bulk_create(
        Agent(
            user=user,
            display_name=f"Agent {n}",
            telephony_identity=f"x{n}",
            status=["available", "busy", "wrap_up", "break", "offline"][n % 5],
        )
        for n, user in enumerate(users)
    )
    Agent.queues.through.objects.bulk_create(
        Agent.queues.through(agent=agent, queue=queues[(n + k) % 50])
        for n, agent in enumerate(agents)
        for k in range(3)
    )
    for n in range(200):
        agent = agents[n % 500]
        call = make_call(
            queues[n % 50],
            queued=at(n % 100),
            answered_after=None if n % 4 == 0 else 10 + n % 30,
            agent=agent,
            last_agent=agents[(n + 1) % 500] if n % 3 == 0 else None,
            state="connected" if n % 7 == 0 and n % 4 else None,
        )
        if n % 3 == 0:
            decide(call, DecisionReason.LAST_AGENT_UNAVAILABLE, agent=call.last_agent)

    with django_assert_max_num_queries(16):
        figures = wall.figures(NOON)
    with django_assert_max_num_queries(8):
        wall.queue_stats(queues[0], NOON)

    assert len(figures["queues"]) == 50
    assert len(figures["agents"]) == 500
    assert sum(q["waiting"] for q in figures["queues"]) == 50
