"""The floor now: who waits and since when, what each agent is doing (and today's not-ready
time), and which callers the wall names."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import datetime
from typing import Any

from django.db import connection
from django.db.models import Count

from customers.selectors import named_to_onlookers
from routing.models import Agent, AgentStatusChange, Call, Offer
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
from supervisor.figures import day_start, in_queue, iso, wait_start


def waiting_calls(now: datetime, *, queue_id: int | None = None) -> list[dict[str, Any]]:
    """Callers waiting now, longest first, with the moment their wait began (screens tick it)."""
    rows = (
        Call.objects.filter(in_queue(queue_id), state__in=WAITING_STATES)
        .annotate(wait_start=wait_start())
        .order_by("wait_start", "id")
        .values(
            "telephony_call_id",
            "queue_id",
            "state",
            "wait_start",
            "last_agent_wait_until",
            "last_agent__display_name",
            "callback_id",
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
            # A try at calling a caller back, waiting at the caller's original place.
            "callback": row["callback_id"] is not None,
        }
        for row in rows
    ]


def empty_agent_counts() -> dict[str, int]:
    return {status: 0 for status in AgentStatus.values}


def agents_by_queue(*, queue_id: int | None = None) -> dict[int, dict[str, int]]:
    counts: dict[int, dict[str, int]] = defaultdict(empty_agent_counts)
    rows = (
        Agent.queues.through.objects.filter(in_queue(queue_id))
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
                "status_changed_at": iso(agent["status_changed_at"]),
                "not_ready_today_seconds": not_ready.get(agent["id"], {}),
                "queues": queue_slugs.get(agent["id"], []),
                "ringing": agent["id"] in ringing,
                "call": (
                    {
                        "call_id": call["telephony_call_id"],
                        "state": call["state"],
                        "caller": caller_shown(call, caller_names=caller_names),
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


def caller_shown(call: dict[str, Any], *, caller_names: bool) -> str:
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
