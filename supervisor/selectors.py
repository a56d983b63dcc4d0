"""The supervisor's figures: every queue live, the day so far, and how often callers were reunited.

Each function reads with a fixed number of queries, however many queues, agents or calls there
are: rows are fetched set-wise and grouped in Python or in SQL, never one query per row.

"Today" starts at local midnight (settings.TIME_ZONE). A call belongs to the day it was created
on; its wait starts when it reached the queue (`queued_at`, else when it began ringing).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import datetime, timedelta
from typing import Any

from django.db import connection
from django.db.models import (
    Avg,
    Count,
    DurationField,
    Exists,
    ExpressionWrapper,
    F,
    OuterRef,
    Q,
    Value,
)
from django.db.models.functions import Coalesce
from django.utils import timezone

from customers.selectors import named_to_onlookers
from routing.models import (
    Agent,
    AgentStatusChange,
    Call,
    DecisionReason,
    Offer,
    Queue,
    RoutingDecision,
)
from routing.states import (
    TALKING_STATES,
    WAITING_STATES,
    AgentStatus,
    CallState,
    OfferState,
    not_ready_reason_label,
    not_ready_reasons,
    status_label,
)

SERIES_BUCKET_MINUTES = 15

# Why a caller with a last agent was not connected to them, from the first routing decision that
# gave up on that agent. The keys are what the dashboard and the JSON API show.
MISSED_REUNION_REASONS: dict[str, str] = {
    DecisionReason.LAST_AGENT_WAIT_EXPIRED: "busy_past_wait",
    DecisionReason.LAST_AGENT_BUSY_NOT_HELD: "not_held",
    DecisionReason.LAST_AGENT_UNAVAILABLE: "offline_or_break",
    DecisionReason.LAST_AGENT_DECLINED: "declined",
    DecisionReason.OFFER_DECLINED: "declined",
    DecisionReason.OFFER_TIMED_OUT: "timed_out",
}
NOT_REUNITED_KEYS = (
    "busy_past_wait",
    "not_held",
    "offline_or_break",
    "declined",
    "timed_out",
    "caller_hung_up",
    "other",
)
# A declined or timed-out offer only explains a missed reunion when it was the last agent's offer.
_REASONS_ABOUT_THE_LAST_AGENT_OFFER = {
    DecisionReason.OFFER_DECLINED,
    DecisionReason.OFFER_TIMED_OUT,
}


def day_start(now: datetime) -> datetime:
    return timezone.localtime(now).replace(hour=0, minute=0, second=0, microsecond=0)


def _wait_start() -> Coalesce:
    return Coalesce("queued_at", "ringing_at", "created_at")


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def _caller_shown(call: dict[str, Any], *, caller_names: bool) -> str:
    """Who an agent is talking to, as the wall may say it: a name only where the screen is a
    person's who is audited for it (`caller_names`) and the caller's consent allows onlookers
    to know it (customers.selectors.named_to_onlookers)."""
    if call["customer_id"] is None:
        return "Caller not identified yet"
    if call["customer__erased_at"] is not None:
        return "Erased customer"
    if not named_to_onlookers(call["customer__consent"]):
        return "Anonymous caller"
    return call["customer__name"] if caller_names else "Identified caller"


def callers_named(figures: dict[str, Any]) -> list[tuple[int, int]]:
    """(customer id, call id) of every caller `figures` shows, for the access log. One query.

    An agent's current caller counts where the wall names them (as consent allows); an
    abandoned caller whenever they are an identified customer, since the list shows their
    number to call them back whatever their consent."""
    on_a_call = {row["call"]["call_id"] for row in figures["agents"] if row["call"]}
    abandoned = {row["call_id"] for row in figures.get("abandoned", []) if row["number"]}
    if not on_a_call and not abandoned:
        return []
    return [
        (customer_id, call_id)
        for telephony_call_id, customer_id, call_id, consent in Call.objects.filter(
            telephony_call_id__in=on_a_call | abandoned,
            customer__isnull=False,
            customer__erased_at__isnull=True,
        ).values_list("telephony_call_id", "customer_id", "id", "customer__consent")
        if telephony_call_id in abandoned or named_to_onlookers(consent)
    ]


def _empty_agent_counts() -> dict[str, int]:
    return {status: 0 for status in AgentStatus.values}


def _in_queue(queue_id: int | None, field: str = "queue_id") -> Q:
    return Q(**{field: queue_id}) if queue_id is not None else Q(**{f"{field}__isnull": False})


def waiting_calls(now: datetime, *, queue_id: int | None = None) -> list[dict[str, Any]]:
    """Callers waiting now, longest first, with the moment their wait began (screens tick it)."""
    rows = (
        Call.objects.filter(_in_queue(queue_id), state__in=WAITING_STATES)
        .annotate(wait_start=_wait_start())
        .order_by("wait_start", "id")
        .values(
            "telephony_call_id",
            "queue_id",
            "state",
            "wait_start",
            "last_agent_wait_until",
            "last_agent__display_name",
        )
    )
    return [
        {
            "call_id": row["telephony_call_id"],
            "queue_id": row["queue_id"],
            "state": row["state"],
            "waiting_since": row["wait_start"].isoformat(),
            "held_for_last_agent": (
                row["last_agent__display_name"]
                if row["last_agent_wait_until"] and row["last_agent_wait_until"] > now
                else None
            ),
        }
        for row in rows
    ]


def today_by_queue(now: datetime, *, queue_id: int | None = None) -> dict[int, dict[str, Any]]:
    """Answered, abandoned, service level and average speed of answer, per queue, since midnight.

    Service level is the share of callers whose wait ended today (answered or abandoned) who were
    answered within the queue's target; a caller who gave up counts against it.
    """
    wait = ExpressionWrapper(F("connected_at") - _wait_start(), output_field=DurationField())
    target = ExpressionWrapper(
        F("queue__service_level_seconds") * Value(timedelta(seconds=1)),
        output_field=DurationField(),
    )
    rows = (
        Call.objects.filter(_in_queue(queue_id), created_at__gte=day_start(now))
        .annotate(wait=wait, target=target)
        .values("queue_id")
        .annotate(
            answered=Count("id", filter=Q(connected_at__isnull=False)),
            answered_within_target=Count(
                "id", filter=Q(connected_at__isnull=False, wait__lte=F("target"))
            ),
            abandoned=Count("id", filter=Q(state=CallState.ABANDONED)),
            average_wait=Avg("wait", filter=Q(connected_at__isnull=False)),
        )
        .order_by()
    )
    figures: dict[int, dict[str, Any]] = {}
    for row in rows:
        figures[row["queue_id"]] = _day_figures(
            answered=row["answered"],
            answered_within_target=row["answered_within_target"],
            abandoned=row["abandoned"],
            average_wait=row["average_wait"],
        )
    return figures


def _day_figures(
    *,
    answered: int = 0,
    answered_within_target: int = 0,
    abandoned: int = 0,
    average_wait: timedelta | None = None,
) -> dict[str, Any]:
    return {
        "answered": answered,
        "answered_within_target": answered_within_target,
        "abandoned": abandoned,
        "service_level": _ratio(answered_within_target, answered + abandoned),
        "abandonment_rate": _ratio(abandoned, answered + abandoned),
        "average_speed_of_answer_seconds": (
            round(average_wait.total_seconds(), 1) if average_wait is not None else None
        ),
    }


def _sum_day_figures(per_queue: list[dict[str, Any]]) -> dict[str, Any]:
    answered = sum(f["answered"] for f in per_queue)
    weighted = sum(
        f["average_speed_of_answer_seconds"] * f["answered"]
        for f in per_queue
        if f["average_speed_of_answer_seconds"] is not None
    )
    return _day_figures(
        answered=answered,
        answered_within_target=sum(f["answered_within_target"] for f in per_queue),
        abandoned=sum(f["abandoned"] for f in per_queue),
        average_wait=timedelta(seconds=weighted / answered) if answered else None,
    )


def reunion_by_queue(
    now: datetime, *, queue_id: int | None = None
) -> dict[int | None, dict[str, Any]]:
    """Of today's callers who had a last agent: how many reached that agent, and why not.

    Callers still waiting are not counted yet. The reason a caller missed their agent is the
    first routing decision that gave up on that agent; a caller who hung up before any such
    decision "hung up"; anything else (e.g. moved by a supervisor) is "other".
    """
    calls = Call.objects.filter(created_at__gte=day_start(now), last_agent__isnull=False)
    if queue_id is not None:
        calls = calls.filter(queue_id=queue_id)
    first_miss = dict(
        RoutingDecision.objects.filter(call__in=calls.values("id"))
        .filter(
            Q(reason__in=MISSED_REUNION_REASONS.keys())
            & (
                ~Q(reason__in=_REASONS_ABOUT_THE_LAST_AGENT_OFFER)
                | Q(agent_id=F("call__last_agent_id"))
            )
        )
        .order_by("call_id", "decided_at", "id")
        .distinct("call_id")
        .values_list("call_id", "reason")
    )
    tallies: dict[int | None, Counter] = defaultdict(Counter)
    for row in calls.values(
        "id", "queue_id", "state", "agent_id", "last_agent_id", "connected_at"
    ).order_by():
        row["first_miss"] = first_miss.get(row["id"])
        tallies[row["queue_id"]][_reunion_outcome(row)] += 1
    return {queue_id: _reunion_figures(tally) for queue_id, tally in tallies.items()}


def _reunion_outcome(row: dict[str, Any]) -> str:
    if row["connected_at"] is not None and row["agent_id"] == row["last_agent_id"]:
        return "reunited"
    if row["first_miss"]:
        return MISSED_REUNION_REASONS[row["first_miss"]]
    if row["state"] in WAITING_STATES:
        return "still_waiting"
    if row["state"] == CallState.ABANDONED:
        return "caller_hung_up"
    return "other"


def _reunion_figures(tally: Counter) -> dict[str, Any]:
    not_reunited = {key: tally[key] for key in NOT_REUNITED_KEYS}
    callers = tally["reunited"] + sum(not_reunited.values())
    return {
        "callers_with_last_agent": callers,
        "reunited": tally["reunited"],
        "rate": _ratio(tally["reunited"], callers),
        "still_waiting": tally["still_waiting"],
        "not_reunited": not_reunited,
    }


def _sum_reunion(per_queue: list[dict[str, Any]]) -> dict[str, Any]:
    tally: Counter = Counter()
    for figures in per_queue:
        tally["reunited"] += figures["reunited"]
        tally["still_waiting"] += figures["still_waiting"]
        tally.update(figures["not_reunited"])
    return _reunion_figures(tally)


def agents_by_queue(*, queue_id: int | None = None) -> dict[int, dict[str, int]]:
    counts: dict[int, dict[str, int]] = defaultdict(_empty_agent_counts)
    rows = (
        Agent.queues.through.objects.filter(_in_queue(queue_id))
        .values("queue_id", "agent__status")
        .annotate(agents=Count("agent_id"))
        .order_by()
    )
    for row in rows:
        counts[row["queue_id"]][row["agent__status"]] = row["agents"]
    return counts


def agent_rows(now: datetime, *, caller_names: bool = False) -> list[dict[str, Any]]:
    """Each agent: status and since when, current caller (name only, and only with
    `caller_names`, as consent allows), calls answered today.

    Deliberately nothing about how long calls took: no handle-time ranking.
    """
    queue_slugs: dict[int, list[str]] = defaultdict(list)
    for agent_id, slug in Agent.queues.through.objects.values_list(
        "agent_id", "queue__slug"
    ).order_by("queue__name"):
        queue_slugs[agent_id].append(slug)

    current_calls = {
        row["agent_id"]: row
        for row in Call.objects.filter(
            agent__isnull=False, state__in=TALKING_STATES | {CallState.WRAP_UP}
        )
        .order_by("connected_at")
        .values(
            "agent_id",
            "telephony_call_id",
            "state",
            "customer_id",
            "customer__name",
            "customer__consent",
            "customer__erased_at",
        )
    }
    ringing = set(Offer.objects.filter(state=OfferState.OFFERED).values_list("agent_id", flat=True))
    calls_today = dict(
        Call.objects.filter(connected_at__gte=day_start(now), agent__isnull=False)
        .values("agent_id")
        .annotate(calls=Count("id"))
        .values_list("agent_id", "calls")
        .order_by()
    )
    not_ready = not_ready_today(now)
    rows = []
    for agent in Agent.objects.order_by("display_name", "id").values(
        "id", "display_name", "status", "status_changed_at", "not_ready_reason"
    ):
        call = current_calls.get(agent["id"])
        rows.append(
            {
                "id": agent["id"],
                "display_name": agent["display_name"],
                "status": agent["status"],
                "status_label": status_label(agent["status"], agent["not_ready_reason"]),
                "not_ready_reason": agent["not_ready_reason"],
                "status_changed_at": _iso(agent["status_changed_at"]),
                "not_ready_today_seconds": not_ready.get(agent["id"], {}),
                "queues": queue_slugs.get(agent["id"], []),
                "ringing": agent["id"] in ringing,
                "call": (
                    {
                        "call_id": call["telephony_call_id"],
                        "state": call["state"],
                        "caller": _caller_shown(call, caller_names=caller_names),
                    }
                    if call
                    else None
                ),
                "calls_today": calls_today.get(agent["id"], 0),
            }
        )
    return rows


def not_ready_today(now: datetime) -> dict[int, dict[str, int]]:
    """Seconds each agent has been not ready today, per reason, from their status history: one
    SQL statement. A not-ready spell that began before midnight counts from midnight, one still
    going counts to `now`."""
    table = AgentStatusChange._meta.db_table
    agent_table = Agent._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            WITH changes AS (
                SELECT agent_id, status, not_ready_reason, changed_at, id
                FROM {table}
                WHERE changed_at >= %(start)s AND changed_at <= %(now)s
                UNION ALL
                -- Where each agent stood at midnight: their latest change before it.
                SELECT a.id, before.status, before.not_ready_reason, %(start)s, 0
                FROM {agent_table} a CROSS JOIN LATERAL (
                    SELECT c.status, c.not_ready_reason FROM {table} c
                    WHERE c.agent_id = a.id AND c.changed_at < %(start)s
                    ORDER BY c.changed_at DESC, c.id DESC LIMIT 1
                ) before
            ), spells AS (
                SELECT agent_id, status, not_ready_reason, changed_at AS began,
                       lead(changed_at, 1, %(now)s)
                           OVER (PARTITION BY agent_id ORDER BY changed_at, id) AS ended
                FROM changes
            )
            SELECT agent_id, not_ready_reason, extract(epoch FROM sum(ended - began))
            FROM spells
            WHERE status = %(break)s
            GROUP BY agent_id, not_ready_reason
            """,
            {"start": day_start(now), "now": now, "break": AgentStatus.BREAK},
        )
        rows = cursor.fetchall()
    seconds: dict[int, dict[str, int]] = defaultdict(dict)
    for agent_id, reason, total in rows:
        seconds[agent_id][reason] = int(total)
    return seconds


def not_ready_totals(agents: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Today's not-ready time per reason over the floor, in the deployment's order of reasons,
    with any reason no longer listed (the list changed today) after them."""
    totals: Counter = Counter()
    for agent in agents:
        totals.update(agent["not_ready_today_seconds"])
    reasons = not_ready_reasons()
    reasons += sorted(reason for reason in totals if reason not in reasons)
    return [
        {
            "reason": reason,
            "label": not_ready_reason_label(reason),
            "seconds": totals[reason],
            "agents_now": sum(
                1
                for agent in agents
                if agent["status"] == AgentStatus.BREAK and agent["not_ready_reason"] == reason
            ),
        }
        for reason in reasons
    ]


def abandoned_today(now: datetime, *, caller_names: bool = False) -> list[dict[str, Any]]:
    """Callers who hung up before anyone answered today, latest first, so someone can call them
    back: who (as consent allows, like the wall), their number, when, how long they waited,
    whose caller they were (their last agent) and whether someone has called them back.

    Name and number only with `caller_names`, for a screen that records them in the access log
    (`callers_named`); without, a script reading the figures gets counts and times only."""
    rows = (
        Call.objects.filter(state=CallState.ABANDONED, created_at__gte=day_start(now))
        .annotate(wait_start=_wait_start())
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
                    _caller_shown(row, caller_names=caller_names)
                    if row["customer_id"] is not None
                    else "Unknown caller"
                ),
                "number": (row["from_e164"] or row["from_number"] or None)
                if caller_names
                else None,
                "hung_up_at": _iso(hung_up_at),
                "waited_seconds": max(0, int((hung_up_at - row["wait_start"]).total_seconds())),
                "last_agent": (
                    {"id": row["last_agent_id"], "display_name": row["last_agent__display_name"]}
                    if row["last_agent_id"]
                    else None
                ),
                "called_back": (
                    {
                        "by": row["call_back__username"],
                        "at": _iso(row["call_back__called_back_at"]),
                    }
                    if row["call_back__called_back_at"]
                    else None
                ),
            }
        )
    return abandoned


REUNION_TABLE_DAYS = 7


def reunion_table(now: datetime | None = None, *, days: int = REUNION_TABLE_DAYS) -> dict[str, Any]:
    """Returning callers (calls with a last agent) over the last `days` days, per queue and per
    last agent: how many reached that agent, how many the router held for the busy agent
    (`last_agent_busy_waited`) and how many of those then reached them, how many it sent
    straight to the queue as they avoid holding (`last_agent_busy_not_held`) and how many found
    their agent offline or not ready (`last_agent_unavailable`). What a supervisor reads to tune
    each queue's two windows. One SQL statement, grouped by queue and agent."""
    now = now or timezone.now()
    since = now - timedelta(days=days)

    def decided(reason: str) -> Exists:
        return Exists(RoutingDecision.objects.filter(call_id=OuterRef("id"), reason=reason))

    reached = Q(connected_at__isnull=False, agent_id=F("last_agent_id"))
    waited = decided(DecisionReason.LAST_AGENT_BUSY_WAITED)
    rows = (
        Call.objects.filter(created_at__gte=since, created_at__lte=now, last_agent__isnull=False)
        .values(
            "queue_id",
            "queue__slug",
            "queue__name",
            "queue__last_agent_wait_seconds",
            "queue__hold_averse_wait_seconds",
            "last_agent_id",
            "last_agent__display_name",
        )
        .annotate(
            returning=Count("id"),
            still_waiting=Count("id", filter=Q(state__in=WAITING_STATES)),
            reunited=Count("id", filter=reached),
            waited_for=Count("id", filter=Q(waited)),
            waited_for_reunited=Count("id", filter=Q(waited) & reached),
            sent_to_queue=Count("id", filter=Q(decided(DecisionReason.LAST_AGENT_BUSY_NOT_HELD))),
            agent_unavailable=Count("id", filter=Q(decided(DecisionReason.LAST_AGENT_UNAVAILABLE))),
        )
        .order_by()
    )
    by_queue: dict[Any, Counter] = defaultdict(Counter)
    by_agent: dict[Any, Counter] = defaultdict(Counter)
    queues: dict[Any, dict[str, Any]] = {}
    agents: dict[Any, dict[str, Any]] = {}
    for row in rows:
        counts = Counter({key: row[key] for key in _REUNION_COUNTS})
        by_queue[row["queue_id"]] += counts
        by_agent[row["last_agent_id"]] += counts
        queues[row["queue_id"]] = {
            "slug": row["queue__slug"],
            "name": row["queue__name"] or "No queue",
            "last_agent_wait_seconds": row["queue__last_agent_wait_seconds"],
            "hold_averse_wait_seconds": row["queue__hold_averse_wait_seconds"],
        }
        agents[row["last_agent_id"]] = {
            "id": row["last_agent_id"],
            "display_name": row["last_agent__display_name"],
        }
    total: Counter = Counter()
    for counts in by_queue.values():
        total += counts
    return {
        "days": days,
        "since": since.isoformat(),
        "generated_at": now.isoformat(),
        "queues": sorted(
            ({**queues[key], **_reunion_row(counts)} for key, counts in by_queue.items()),
            key=lambda row: row["name"],
        ),
        "agents": sorted(
            ({**agents[key], **_reunion_row(counts)} for key, counts in by_agent.items()),
            key=lambda row: row["display_name"],
        ),
        "total": _reunion_row(total),
    }


_REUNION_COUNTS = (
    "returning",
    "still_waiting",
    "reunited",
    "waited_for",
    "waited_for_reunited",
    "sent_to_queue",
    "agent_unavailable",
)


def _reunion_row(counts: Counter) -> dict[str, Any]:
    row = {key: counts[key] for key in _REUNION_COUNTS}
    settled = row["returning"] - row["still_waiting"]
    row["reunion_rate"] = _ratio(row["reunited"], settled)
    row["waited_for_share"] = _ratio(row["waited_for"], row["returning"])
    row["sent_to_queue_share"] = _ratio(row["sent_to_queue"], row["returning"])
    row["agent_unavailable_share"] = _ratio(row["agent_unavailable"], row["returning"])
    row["waited_for_reached_rate"] = _ratio(row["waited_for_reunited"], row["waited_for"])
    return row


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
                "service_level": _ratio(within_target, answered + abandoned),
            }
        )
    return {"bucket_minutes": SERIES_BUCKET_MINUTES, "points": points}


def dashboard(now: datetime | None = None, *, caller_names: bool = False) -> dict[str, Any]:
    """Everything the supervisor screen shows, in one plain dict (the socket frame's body).
    Callers are named only with `caller_names`, by a screen that records who it named
    (`callers_named`); a script reading the JSON figures gets figures, not people."""
    now = now or timezone.now()
    queues = list(
        Queue.objects.order_by("name", "id").values("id", "slug", "name", "service_level_seconds")
    )
    waiting = waiting_calls(now)
    day = today_by_queue(now)
    reunion = reunion_by_queue(now)
    agent_counts = agents_by_queue()
    slug_of = {queue["id"]: queue["slug"] for queue in queues}
    waiting_by_queue: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for call in waiting:
        call["queue"] = slug_of.get(call.pop("queue_id"))
        waiting_by_queue[call["queue"]].append(call)

    queue_figures = [
        _queue_figures(
            queue,
            waiting=waiting_by_queue.get(queue["slug"], []),
            day=day.get(queue["id"]) or _day_figures(),
            reunion=reunion.get(queue["id"]) or _reunion_figures(Counter()),
            agents=agent_counts.get(queue["id"]) or _empty_agent_counts(),
        )
        for queue in queues
    ]
    all_day = [figures["today"] for figures in queue_figures]
    agents = agent_rows(now, caller_names=caller_names)
    return {
        "generated_at": now.isoformat(),
        "totals": {
            "waiting": len(waiting),
            "longest_waiting_since": waiting[0]["waiting_since"] if waiting else None,
            "offered": sum(1 for call in waiting if call["state"] == CallState.OFFERED),
            "today": _sum_day_figures(all_day),
            "reunion": _sum_reunion(list(reunion.values())),
            "not_ready_today": not_ready_totals(agents),
        },
        "queues": queue_figures,
        "agents": agents,
        "abandoned": abandoned_today(now, caller_names=caller_names),
        "series": day_series(now),
    }


def _queue_figures(
    queue: dict[str, Any],
    *,
    waiting: list[dict[str, Any]],
    day: dict[str, Any],
    reunion: dict[str, Any],
    agents: dict[str, int],
) -> dict[str, Any]:
    return {
        "id": queue["id"],
        "slug": queue["slug"],
        "name": queue["name"],
        "service_level_seconds": queue["service_level_seconds"],
        "waiting": len(waiting),
        "longest_waiting_since": waiting[0]["waiting_since"] if waiting else None,
        "offered": sum(1 for call in waiting if call["state"] == CallState.OFFERED),
        "waiting_calls": waiting,
        "agents": agents,
        "today": day,
        "reunion": reunion,
    }


def queue_stats(queue: Queue, now: datetime | None = None) -> dict[str, Any]:
    """One queue's figures (the `/api/queues/<slug>/stats/` body), from the same selectors."""
    now = now or timezone.now()
    waiting = waiting_calls(now, queue_id=queue.id)
    for call in waiting:
        call["queue"] = queue.slug
        del call["queue_id"]
    figures = _queue_figures(
        {
            "id": queue.id,
            "slug": queue.slug,
            "name": queue.name,
            "service_level_seconds": queue.service_level_seconds,
        },
        waiting=waiting,
        day=today_by_queue(now, queue_id=queue.id).get(queue.id) or _day_figures(),
        reunion=reunion_by_queue(now, queue_id=queue.id).get(queue.id)
        or _reunion_figures(Counter()),
        agents=agents_by_queue(queue_id=queue.id).get(queue.id) or _empty_agent_counts(),
    )
    figures["generated_at"] = now.isoformat()
    figures["series"] = day_series(now, queue_id=queue.id)
    return figures
