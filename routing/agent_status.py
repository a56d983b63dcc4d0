"""An agent's status as Rapport moves it: each change is one statement with its history row,
then the agent's screen and the supervisors' hear of it; an agent made available is looked for
a waiting caller. The automatic moves are here too: not ready after a missed call, available
again when wrap-up runs out."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from infrastructure import broadcast
from infrastructure.database import rows
from infrastructure.errors import Refused
from routing import handoff, messages, selectors, wrap_up
from routing.models import Agent, AgentStatusChange, Call
from routing.states import (
    MISSED_CALL,
    TALKING_STATES,
    WAITING_STATES,
    AgentStatus,
    check_agent_move,
    default_not_ready_reason,
)


def set_status(
    *,
    agent: Agent,
    status: str,
    reason: str,
    now: datetime | None = None,
    changed_by: Any = None,
    not_ready_reason: str = "",
    unless_in_hand_besides: int | None = None,
    wrap_up_call: int | None = None,
) -> bool:
    """Move a locked agent to `status`, with its history row and the messages. Returns whether
    anything changed. With `unless_in_hand_besides` (a call's id), nothing changes when the
    agent has another call in hand (`selectors.calls_in_hand`), checked in the same statement.
    Wrap-up is always of a call, `wrap_up_call` (its id); any other status leaves none.

    `reason` says what caused the change (set_by_agent, offer_timed_out, a supervisor's typed
    why); `not_ready_reason` what a not-ready agent is doing (lunch, missed_call), only with
    break, where it defaults to the deployment's first. A not-ready agent changing only their
    reason is a change too: its time in state starts again."""
    if status == AgentStatus.BREAK:
        not_ready_reason = not_ready_reason or default_not_ready_reason()
    else:
        not_ready_reason = ""
    if agent.status == status and agent.not_ready_reason == not_ready_reason:
        return False
    if agent.status != status:
        check_agent_move(agent.status, status)
    if (status == AgentStatus.WRAP_UP) != (wrap_up_call is not None):
        raise ValueError("A wrap-up, and only a wrap-up, is of a call (wrap_up_call).")
    now = now or timezone.now()
    if changed_by is not None and not changed_by.is_authenticated:
        changed_by = None
    sql = _STATUS_SQL if unless_in_hand_besides is None else _STATUS_UNLESS_IN_HAND_SQL
    with rows.prepared_cursor() as cursor:
        cursor.execute(
            sql,
            {
                "agent": agent.id,
                "status": status,
                "previous": agent.status,
                "now": now,
                "changed_by": None if changed_by is None else changed_by.pk,
                "reason": reason,
                "not_ready_reason": not_ready_reason,
                "call": unless_in_hand_besides,
                "in_hand": _IN_HAND_STATES,
                "wrap_up_call": wrap_up_call,
            },
        )
        if cursor.fetchone() is None:
            return False
    agent.status = status
    agent.status_changed_at = now
    agent.not_ready_reason = not_ready_reason
    agent.wrap_up_call_id = wrap_up_call
    broadcast.send_to_agent(agent.id, messages.status_message(agent, reason=reason))
    broadcast.notify_supervisors(agent_id=agent.id)
    if status == AgentStatus.AVAILABLE:
        handoff.request_offer_for_agent(agent_id=agent.id)
    return True


# The agent's new status and its history row in one statement, written as SQL: every answered
# and ended call changes an agent's status. The guarded form leaves an agent who has another
# call in hand as they are; it runs after the agent's lock was taken, so its snapshot sees every
# call given to them before.
_STATUS_CHANGE_SQL = f"""
    WITH changed AS (
        UPDATE {Agent._meta.db_table}
        SET status = %(status)s, status_changed_at = %(now)s::timestamptz,
            not_ready_reason = %(not_ready_reason)s, wrap_up_call_id = %(wrap_up_call)s::bigint
        WHERE id = %(agent)s {{guard}}
        RETURNING id
    ), history AS (
        INSERT INTO {AgentStatusChange._meta.db_table}
            (agent_id, status, previous_status, changed_at, changed_by_id, reason,
             not_ready_reason)
        SELECT changed.id, %(status)s, %(previous)s, %(now)s::timestamptz,
            %(changed_by)s::bigint, %(reason)s, %(not_ready_reason)s
        FROM changed
    )
    SELECT id FROM changed
"""
_STATUS_SQL = _STATUS_CHANGE_SQL.format(guard="")
_STATUS_UNLESS_IN_HAND_SQL = _STATUS_CHANGE_SQL.format(
    guard=f"""AND NOT EXISTS (
        SELECT 1 FROM {Call._meta.db_table} in_hand
        WHERE in_hand.agent_id = %(agent)s AND in_hand.state = ANY(%(in_hand)s::varchar[])
            AND in_hand.id <> %(call)s::bigint)"""
)
_IN_HAND_STATES = sorted(TALKING_STATES | WAITING_STATES)


def not_ready_after_missed_call(agent: Agent, *, now: datetime) -> None:
    """An agent who let a call go unanswered is taken out, so the next caller is not offered to
    an empty chair; the console tells them why (`offer_timed_out`)."""
    set_status(
        agent=agent,
        status=AgentStatus.BREAK,
        reason="offer_timed_out",
        not_ready_reason=MISSED_CALL,
        now=now,
    )


@transaction.atomic
def ready(*, agent_id: int, changed_by: Any = None) -> Agent:
    """The agent ends their wrap-up: with a wrap-up code first where the queue requires one."""
    agent = Agent.objects.select_for_update().get(id=agent_id)
    if agent.status == AgentStatus.AVAILABLE:
        return agent
    if agent.status != AgentStatus.WRAP_UP:
        raise Refused("You are not in wrap-up.", field="status")
    wrap_up.check_ready(agent)
    set_status(agent=agent, status=AgentStatus.AVAILABLE, reason="ready", changed_by=changed_by)
    return agent


def end_wrap_up_if_over(*, agent_id: int) -> bool:
    """The wrap-up limit of the call's queue ran out: the agent is available again."""
    with transaction.atomic():
        agent = (
            selectors.wrap_ups_over(now=timezone.now())
            .select_for_update(skip_locked=True, of=("self",))
            .filter(id=agent_id)
            .first()
        )
        if agent is None:
            return False
        return set_status(agent=agent, status=AgentStatus.AVAILABLE, reason="wrap_up_limit")
