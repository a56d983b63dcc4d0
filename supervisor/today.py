"""The day so far: answered, abandoned, service level and speed of answer per queue, what held
callers chose, the call backs still to make, the waiting line and service level through the day,
and who hung up before being answered."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.db import connection
from django.db.models import Avg, Count, DurationField, ExpressionWrapper, F, Min, Q, Value

from routing.models import (
    PENDING_CALLBACK_STATES,
    Call,
    Callback,
    CallbackState,
    CallerChoice,
    Queue,
)
from routing.states import CallState
from supervisor.figures import day_start, in_queue, iso, ratio, wait_start
from supervisor.floor import caller_shown

SERIES_BUCKET_MINUTES = 15


CALLER_CHOICE_COUNTS = ("chose_to_wait", "chose_next_colleague", "asked_for_callback")


def today_by_queue(now: datetime, *, queue_id: int | None = None) -> dict[int, dict[str, Any]]:
    """Answered, abandoned, service level and average speed of answer, per queue, since midnight.

    Service level is the share of callers whose wait ended today (answered or abandoned) who were
    answered within the queue's target; a caller who gave up counts against it.
    """
    wait = ExpressionWrapper(F("connected_at") - wait_start(), output_field=DurationField())
    target = ExpressionWrapper(
        F("queue__service_level_seconds") * Value(timedelta(seconds=1)),
        output_field=DurationField(),
    )
    rows = (
        Call.objects.filter(in_queue(queue_id), created_at__gte=day_start(now))
        .annotate(wait=wait, target=target)
        .values("queue_id")
        .annotate(
            answered=Count("id", filter=Q(connected_at__isnull=False)),
            answered_within_target=Count(
                "id", filter=Q(connected_at__isnull=False, wait__lte=F("target"))
            ),
            abandoned=Count("id", filter=Q(state=CallState.ABANDONED)),
            average_wait=Avg("wait", filter=Q(connected_at__isnull=False)),
            chose_to_wait=Count("id", filter=Q(caller_choice=CallerChoice.WAIT)),
            chose_next_colleague=Count("id", filter=Q(caller_choice=CallerChoice.NEXT_COLLEAGUE)),
            asked_for_callback=Count("id", filter=Q(caller_choice=CallerChoice.CALLBACK)),
        )
        .order_by()
    )
    figures: dict[int, dict[str, Any]] = {}
    for row in rows:
        figures[row["queue_id"]] = day_figures(
            answered=row["answered"],
            answered_within_target=row["answered_within_target"],
            abandoned=row["abandoned"],
            average_wait=row["average_wait"],
            choices={name: row[name] for name in CALLER_CHOICE_COUNTS},
        )
    return figures


def wrap_up_codes_by_queue(
    now: datetime, *, queue_id: int | None = None
) -> dict[int, dict[str, Any]]:
    """How today's answered calls were wrapped up, per queue: each code chosen with its count
    (most chosen first, then by label), and how many were left without one. One query. A code
    retired since still counts under the label the call kept."""
    rows = (
        Call.objects.filter(
            in_queue(queue_id), created_at__gte=day_start(now), connected_at__isnull=False
        )
        .values("queue_id", "wrap_up_label")
        .annotate(count=Count("id"))
        .order_by()
    )
    counts: dict[int, dict[str, Any]] = {}
    for row in rows:
        queue = counts.setdefault(row["queue_id"], empty_wrap_up_codes())
        if row["wrap_up_label"]:
            queue["codes"].append({"label": row["wrap_up_label"], "count": row["count"]})
        else:
            queue["uncoded"] = row["count"]
    for queue in counts.values():
        queue["codes"].sort(key=lambda code: (-code["count"], code["label"]))
    return counts


def empty_wrap_up_codes() -> dict[str, Any]:
    return {"codes": [], "uncoded": 0}


def day_figures(
    *,
    answered: int = 0,
    answered_within_target: int = 0,
    abandoned: int = 0,
    average_wait: timedelta | None = None,
    choices: dict[str, int] | None = None,
) -> dict[str, Any]:
    return {
        # What callers held for their busy last agent chose on the keypad (routing.caller_choice).
        **{name: (choices or {}).get(name, 0) for name in CALLER_CHOICE_COUNTS},
        "answered": answered,
        "answered_within_target": answered_within_target,
        "abandoned": abandoned,
        "service_level": ratio(answered_within_target, answered + abandoned),
        "abandonment_rate": ratio(abandoned, answered + abandoned),
        "average_speed_of_answer_seconds": (
            round(average_wait.total_seconds(), 1) if average_wait is not None else None
        ),
    }


def sum_day_figures(per_queue: list[dict[str, Any]]) -> dict[str, Any]:
    answered = sum(f["answered"] for f in per_queue)
    weighted = sum(
        f["average_speed_of_answer_seconds"] * f["answered"]
        for f in per_queue
        if f["average_speed_of_answer_seconds"] is not None
    )
    return day_figures(
        answered=answered,
        answered_within_target=sum(f["answered_within_target"] for f in per_queue),
        abandoned=sum(f["abandoned"] for f in per_queue),
        average_wait=timedelta(seconds=weighted / answered) if answered else None,
        choices={name: sum(f[name] for f in per_queue) for name in CALLER_CHOICE_COUNTS},
    )


def callbacks_by_queue(now: datetime, *, queue_id: int | None = None) -> dict[int, dict[str, Any]]:
    """Call backs still to make (waiting or being placed), with the oldest place among them,
    and those not reached today, per queue. Counts only: the list is `/api/callbacks/`."""
    wanted = Q() if queue_id is None else Q(queue_id=queue_id)
    rows = (
        Callback.objects.filter(wanted)
        .filter(
            Q(state__in=PENDING_CALLBACK_STATES)
            | Q(state=CallbackState.NOT_REACHED, finished_at__gte=day_start(now))
        )
        .values("queue_id")
        .annotate(
            pending=Count("id", filter=Q(state__in=PENDING_CALLBACK_STATES)),
            oldest=Min("place", filter=Q(state__in=PENDING_CALLBACK_STATES)),
            not_reached=Count("id", filter=Q(state=CallbackState.NOT_REACHED)),
        )
        .order_by()
    )
    return {
        row["queue_id"]: callback_figures(
            pending=row["pending"], oldest=row["oldest"], not_reached=row["not_reached"], now=now
        )
        for row in rows
    }


def callback_figures(
    *, pending: int = 0, oldest: datetime | None = None, not_reached: int = 0, now: datetime
) -> dict[str, Any]:
    return {
        "pending": pending,
        "oldest_since": iso(oldest),
        "oldest_age_seconds": max(0, int((now - oldest).total_seconds())) if oldest else None,
        "not_reached_today": not_reached,
    }


def day_series(now: datetime, *, queue_id: int | None = None) -> dict[str, Any]:
    """Waiting calls (at the end of each 15-minute slot, or now) and service level per slot.

    A slot's service level is over the callers who reached the queue in that slot and whose wait
    has ended. Two SQL statements, whatever the length of the day or the number of calls.
    """
    start = day_start(now)
    table = Call._meta.db_table
    queue_table = Queue._meta.db_table
    bucket = timedelta(minutes=SERIES_BUCKET_MINUTES)
    queue_filter = "AND c.queue_id = %(queue_id)s" if queue_id is not None else ""
    params = {"start": start, "now": now, "bucket": bucket, "queue_id": queue_id}
    wait_start = "COALESCE(c.queued_at, c.ringing_at, c.created_at)"
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT date_bin(%(bucket)s, {wait_start}, %(start)s) AS slot,
                   count(*) FILTER (WHERE c.connected_at IS NOT NULL) AS answered,
                   count(*) FILTER (
                       WHERE c.connected_at IS NOT NULL
                       AND c.connected_at - {wait_start}
                           <= q.service_level_seconds * interval '1 second'
                   ) AS within_target,
                   count(*) FILTER (WHERE c.state = 'abandoned') AS abandoned
            FROM {table} c JOIN {queue_table} q ON q.id = c.queue_id
            WHERE c.created_at >= %(start)s {queue_filter}
            GROUP BY slot
            """,
            params,
        )
        answered_by_slot = {row[0]: row[1:] for row in cursor.fetchall()}
        # Waiting at a slot's end = arrived by then minus left by then. Arrivals and departures
        # are counted per slot in one pass and summed up in order, rather than joining every
        # slot to every call. A caller still waiting from before midnight arrives at midnight.
        wait_end = "COALESCE(c.connected_at, c.ended_at)"
        cursor.execute(
            f"""
            SELECT slot, sum(arrived), sum(departed) FROM (
                SELECT date_bin(%(bucket)s, GREATEST({wait_start}, %(start)s), %(start)s),
                       1, 0
                FROM {table} c
                WHERE c.created_at >= %(start)s - interval '1 day' {queue_filter}
                  AND c.queue_id IS NOT NULL
                  AND COALESCE({wait_end}, 'infinity'::timestamptz) > %(start)s
                UNION ALL
                SELECT date_bin(%(bucket)s, {wait_end}, %(start)s), 0, 1
                FROM {table} c
                WHERE c.created_at >= %(start)s - interval '1 day' {queue_filter}
                  AND c.queue_id IS NOT NULL
                  AND {wait_end} > %(start)s AND {wait_end} <= %(now)s
            ) AS moves(slot, arrived, departed)
            GROUP BY slot
            """,
            params,
        )
        moves_by_slot = {row[0]: (row[1], row[2]) for row in cursor.fetchall()}
    waiting_by_slot = []
    waiting = 0
    slot = start
    while slot <= now:
        arrived, departed = moves_by_slot.get(slot, (0, 0))
        waiting += arrived - departed
        waiting_by_slot.append((slot, waiting))
        slot += bucket
    points = []
    for slot, waiting in waiting_by_slot:
        answered, within_target, abandoned = answered_by_slot.get(slot, (0, 0, 0))
        points.append(
            {
                "at": slot.isoformat(),
                "waiting": waiting,
                "answered": answered,
                "abandoned": abandoned,
                "service_level": ratio(within_target, answered + abandoned),
            }
        )
    return {"bucket_minutes": SERIES_BUCKET_MINUTES, "points": points}


def abandoned_today(now: datetime, *, caller_names: bool = False) -> list[dict[str, Any]]:
    """Callers who hung up before anyone answered today, latest first, so someone can call them
    back: who (as consent allows, like the wall), their number, when, how long they waited,
    whose caller they were (their last agent) and whether someone has called them back.

    Name and number only with `caller_names`, for a screen that records them in the access log
    (`callers_named`); without, a script reading the figures gets counts and times only."""
    rows = (
        Call.objects.filter(state=CallState.ABANDONED, created_at__gte=day_start(now))
        .annotate(wait_start=wait_start())
        .order_by(F("ended_at").desc(nulls_last=True), "-id")
        .values(
            "telephony_call_id",
            "from_e164",
            "from_number",
            "queue__slug",
            "wait_start",
            "ended_at",
            "state_changed_at",
            "last_agent_id",
            "last_agent__display_name",
            "customer_id",
            "customer__name",
            "customer__consent",
            "customer__erased_at",
            "call_back__username",
            "call_back__called_back_at",
        )
    )
    abandoned = []
    for row in rows:
        hung_up_at = row["ended_at"] or row["state_changed_at"]
        abandoned.append(
            {
                "call_id": row["telephony_call_id"],
                "queue": row["queue__slug"],
                "caller": (
                    caller_shown(row, caller_names=caller_names)
                    if row["customer_id"] is not None
                    else "Unknown caller"
                ),
                "number": (row["from_e164"] or row["from_number"] or None)
                if caller_names
                else None,
                "hung_up_at": iso(hung_up_at),
                "waited_seconds": max(0, int((hung_up_at - row["wait_start"]).total_seconds())),
                "last_agent": (
                    {"id": row["last_agent_id"], "display_name": row["last_agent__display_name"]}
                    if row["last_agent_id"]
                    else None
                ),
                "called_back": (
                    {
                        "by": row["call_back__username"],
                        "at": iso(row["call_back__called_back_at"]),
                    }
                    if row["call_back__called_back_at"]
                    else None
                ),
            }
        )
    return abandoned
