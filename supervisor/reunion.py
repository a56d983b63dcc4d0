"""How often returning callers reached the agent they last spoke with: counted once, by one
statement (`tallies`), and shown two ways: the day's figures on the wall (per queue, with why
callers missed their agent) and the last days' table (per queue and per last agent, with how
often the hold rule waited for the agent, sent the caller to the queue, or found them away).

A returning caller is a call with a last agent. Each has one outcome: reunited (connected to
that agent, or called back by them), else why not: the first routing decision that gave up on
that agent, else still waiting (their call back too), else a call back made by a colleague or
not reached, else hung up, else "other" (e.g. moved by a supervisor). The tries at calling a
caller back are not callers of their own: they count with the call that asked for them.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import connection
from django.utils import timezone

from routing.models import (
    PENDING_CALLBACK_STATES,
    Agent,
    Call,
    Callback,
    CallerChoice,
    DecisionReason,
    Queue,
    RoutingDecision,
)
from routing.states import WAITING_STATES, CallState
from supervisor.figures import day_start, ratio
from supervisor.labels import NOT_REUNITED_LABELS

REUNITED = "reunited"
STILL_WAITING = "still_waiting"
# Why a caller with a last agent was not connected to them, from the first routing decision that
# gave up on that agent. The keys are what the dashboard and the JSON API show.
MISSED_REUNION_REASONS: dict[str, str] = {
    DecisionReason.LAST_AGENT_WAIT_EXPIRED: "busy_past_wait",
    DecisionReason.LAST_AGENT_BUSY_NOT_HELD: "not_held",
    DecisionReason.LAST_AGENT_UNAVAILABLE: "offline_or_break",
    DecisionReason.LAST_AGENT_DECLINED: "declined",
    DecisionReason.OFFER_DECLINED: "declined",
    DecisionReason.OFFER_TIMED_OUT: "timed_out",
    DecisionReason.CALLER_CHOSE_NEXT: "chose_next",
}
# A caller who asked for a call back that a colleague made, or that never reached them.
CALLBACK_NOT_BY_OWN_AGENT = "callback_not_by_own_agent"
NOT_REUNITED_KEYS = tuple(NOT_REUNITED_LABELS)
# A declined or timed-out offer only explains a missed reunion when it was the last agent's offer.
_REASONS_ABOUT_THE_LAST_AGENT_OFFER = [
    DecisionReason.OFFER_DECLINED,
    DecisionReason.OFFER_TIMED_OUT,
]
# What the hold rule did for a caller whose last agent was busy, or that the agent was away.
_HOLD_STORY = {
    "waited_for": DecisionReason.LAST_AGENT_BUSY_WAITED,
    "sent_to_queue": DecisionReason.LAST_AGENT_BUSY_NOT_HELD,
    "agent_unavailable": DecisionReason.LAST_AGENT_UNAVAILABLE,
}

REUNION_TABLE_DAYS = 7


@dataclass(frozen=True)
class Tally:
    """Returning callers counted by outcome, and by what the hold rule did."""

    counts: Counter = field(default_factory=Counter)

    def __add__(self, other: Tally) -> Tally:
        return Tally(self.counts + other.counts)

    @property
    def settled(self) -> int:
        """Callers whose outcome is known: every one but those still waiting."""
        return self.counts["returning"] - self.counts[STILL_WAITING]

    def day_figures(self) -> dict[str, Any]:
        """The wall's figures: how many reached their agent, and why the others did not."""
        return {
            "callers_with_last_agent": self.settled,
            "reunited": self.counts[REUNITED],
            "rate": ratio(self.counts[REUNITED], self.settled),
            "still_waiting": self.counts[STILL_WAITING],
            "not_reunited": {key: self.counts[key] for key in NOT_REUNITED_KEYS},
        }

    def table_row(self) -> dict[str, Any]:
        """A row of the table a supervisor reads to tune each queue's two waits."""
        counts = self.counts
        return {
            "returning": counts["returning"],
            "still_waiting": counts[STILL_WAITING],
            "reunited": counts[REUNITED],
            "waited_for": counts["waited_for"],
            "waited_for_reunited": counts["waited_for_reunited"],
            "sent_to_queue": counts["sent_to_queue"],
            "agent_unavailable": counts["agent_unavailable"],
            "reunion_rate": ratio(counts[REUNITED], self.settled),
            "waited_for_share": ratio(counts["waited_for"], counts["returning"]),
            "sent_to_queue_share": ratio(counts["sent_to_queue"], counts["returning"]),
            "agent_unavailable_share": ratio(counts["agent_unavailable"], counts["returning"]),
            "waited_for_reached_rate": ratio(counts["waited_for_reunited"], counts["waited_for"]),
            # The caller's own keypad choice, and call backs their own agent made.
            "chose_to_wait": counts["chose_to_wait"],
            "chose_to_wait_reunited": counts["chose_to_wait_reunited"],
            "called_back_by_own_agent": counts["called_back_by_own_agent"],
        }


@dataclass(frozen=True)
class TallyRow:
    """The tally of one queue's callers of one last agent, with what names them."""

    queue: dict[str, Any]
    agent: dict[str, Any]
    tally: Tally


def reunion_by_queue(now: datetime, *, queue_id: int | None = None) -> dict[int | None, Tally]:
    """Today's returning callers, per queue."""
    by_queue: dict[int | None, Tally] = {}
    for row in tallies(since=day_start(now), until=None, queue_id=queue_id):
        queue = row.queue["id"]
        by_queue[queue] = by_queue.get(queue, Tally()) + row.tally
    return by_queue


def reunion_table(now: datetime | None = None, *, days: int = REUNION_TABLE_DAYS) -> dict[str, Any]:
    """Returning callers over the last `days` days, per queue and per last agent: how many
    reached that agent, how many the router held for the busy agent (`last_agent_busy_waited`)
    and how many of those then reached them, how many it sent straight to the queue as they
    avoid holding (`last_agent_busy_not_held`) and how many found their agent offline or not
    ready (`last_agent_unavailable`). One SQL statement."""
    now = now or timezone.now()
    since = now - timedelta(days=days)
    by_queue: dict[Any, Tally] = {}
    by_agent: dict[Any, Tally] = {}
    queues: dict[Any, dict[str, Any]] = {}
    agents: dict[Any, dict[str, Any]] = {}
    for row in tallies(since=since, until=now):
        queue, agent = row.queue["id"], row.agent["id"]
        by_queue[queue] = by_queue.get(queue, Tally()) + row.tally
        by_agent[agent] = by_agent.get(agent, Tally()) + row.tally
        queues[queue] = {key: value for key, value in row.queue.items() if key != "id"}
        agents[agent] = row.agent
    total = sum(by_queue.values(), Tally())
    return {
        "days": days,
        "since": since.isoformat(),
        "generated_at": now.isoformat(),
        "queues": sorted(
            ({**queues[key], **tally.table_row()} for key, tally in by_queue.items()),
            key=lambda row: row["name"],
        ),
        "agents": sorted(
            ({**agents[key], **tally.table_row()} for key, tally in by_agent.items()),
            key=lambda row: row["display_name"],
        ),
        "total": total.table_row(),
    }


def tallies(
    *, since: datetime, until: datetime | None, queue_id: int | None = None
) -> list[TallyRow]:
    """Returning callers created from `since` (to `until`), tallied per queue and last agent:
    one statement, each call's outcome decided once."""
    params: dict[str, Any] = {
        "since": since,
        "until": until,
        "queue": queue_id,
        "missed": list(MISSED_REUNION_REASONS),
        "about_the_offer": _REASONS_ABOUT_THE_LAST_AGENT_OFFER,
        "waiting": sorted(WAITING_STATES),
        "abandoned": CallState.ABANDONED,
        "pending_callback": sorted(PENDING_CALLBACK_STATES),
        "chose_to_wait": CallerChoice.WAIT,
        **{f"missed_{n}": reason for n, reason in enumerate(MISSED_REUNION_REASONS)},
        **{f"missed_key_{n}": key for n, key in enumerate(MISSED_REUNION_REASONS.values())},
        **{f"hold_{name}": reason for name, reason in _HOLD_STORY.items()},
    }
    with connection.cursor() as cursor:
        cursor.execute(_TALLY_SQL, params)
        rows = cursor.fetchall()
    columns = [
        "returning",
        REUNITED,
        STILL_WAITING,
        *NOT_REUNITED_KEYS,
        *_HOLD_STORY,
        "waited_for_reunited",
        "chose_to_wait",
        "chose_to_wait_reunited",
        "called_back_by_own_agent",
    ]
    return [
        TallyRow(
            queue={
                "id": queue,
                "slug": slug,
                "name": name or "No queue",
                "last_agent_wait_seconds": wait,
                "hold_averse_wait_seconds": averse_wait,
            },
            agent={"id": agent, "display_name": display_name},
            tally=Tally(Counter(dict(zip(columns, counts, strict=True)))),
        )
        for queue, slug, name, wait, averse_wait, agent, display_name, *counts in rows
    ]


_MISSED_CASE = "\n".join(
    f"WHEN %(missed_{n})s THEN %(missed_key_{n})s" for n in range(len(MISSED_REUNION_REASONS))
)
_HELD = {
    name: f"""EXISTS (SELECT 1 FROM {RoutingDecision._meta.db_table} held
        WHERE held.call_id = call.id AND held.reason = %(hold_{name})s)"""
    for name in _HOLD_STORY
}
_TALLY_SQL = f"""
    WITH returning_calls AS (
        SELECT call.queue_id, call.last_agent_id,
            CASE
                WHEN call.connected_at IS NOT NULL AND call.agent_id = call.last_agent_id
                    THEN '{REUNITED}'
                WHEN callback.by_own_agent THEN '{REUNITED}'
                WHEN miss.reason IS NOT NULL THEN CASE miss.reason {_MISSED_CASE} END
                WHEN call.state = ANY(%(waiting)s) THEN '{STILL_WAITING}'
                WHEN callback.state = ANY(%(pending_callback)s) THEN '{STILL_WAITING}'
                WHEN callback.state IS NOT NULL THEN '{CALLBACK_NOT_BY_OWN_AGENT}'
                WHEN call.state = %(abandoned)s THEN 'caller_hung_up'
                ELSE 'other'
            END AS outcome,
            call.caller_choice = %(chose_to_wait)s AS chose_to_wait,
            coalesce(callback.by_own_agent, false) AS called_back_by_own_agent,
            {_HELD["waited_for"]} AS waited_for,
            {_HELD["sent_to_queue"]} AS sent_to_queue,
            {_HELD["agent_unavailable"]} AS agent_unavailable
        FROM {Call._meta.db_table} call
        LEFT JOIN LATERAL (
            SELECT decision.reason FROM {RoutingDecision._meta.db_table} decision
            WHERE decision.call_id = call.id AND decision.reason = ANY(%(missed)s)
                AND (decision.reason <> ALL(%(about_the_offer)s)
                     OR decision.agent_id = call.last_agent_id)
            ORDER BY decision.decided_at, decision.id
            LIMIT 1
        ) miss ON true
        LEFT JOIN LATERAL (
            SELECT requested.state, bool_or(
                    try.connected_at IS NOT NULL AND try.agent_id = call.last_agent_id
                ) AS by_own_agent
            FROM {Callback._meta.db_table} requested
            LEFT JOIN {Call._meta.db_table} try ON try.callback_id = requested.id
            WHERE requested.requested_on_id = call.id
            GROUP BY requested.id
        ) callback ON true
        WHERE call.last_agent_id IS NOT NULL AND call.callback_id IS NULL
            AND call.created_at >= %(since)s
            AND (%(until)s::timestamptz IS NULL OR call.created_at <= %(until)s)
            AND (%(queue)s::bigint IS NULL OR call.queue_id = %(queue)s)
    )
    SELECT returning_calls.queue_id, queue.slug, queue.name, queue.last_agent_wait_seconds,
        queue.hold_averse_wait_seconds, returning_calls.last_agent_id, agent.display_name,
        count(*),
        count(*) FILTER (WHERE outcome = '{REUNITED}'),
        count(*) FILTER (WHERE outcome = '{STILL_WAITING}'),
        {", ".join(f"count(*) FILTER (WHERE outcome = '{key}')" for key in NOT_REUNITED_KEYS)},
        count(*) FILTER (WHERE waited_for),
        count(*) FILTER (WHERE sent_to_queue),
        count(*) FILTER (WHERE agent_unavailable),
        count(*) FILTER (WHERE waited_for AND outcome = '{REUNITED}'),
        count(*) FILTER (WHERE chose_to_wait),
        count(*) FILTER (WHERE chose_to_wait AND outcome = '{REUNITED}'),
        count(*) FILTER (WHERE called_back_by_own_agent)
    FROM returning_calls
    LEFT JOIN {Queue._meta.db_table} queue ON queue.id = returning_calls.queue_id
    LEFT JOIN {Agent._meta.db_table} agent ON agent.id = returning_calls.last_agent_id
    GROUP BY returning_calls.queue_id, queue.id, returning_calls.last_agent_id, agent.id
"""
