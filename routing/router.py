"""The router: who gets offered which call.

The telephony webhook calls `call_arrived` / `call_answered` / `call_ended` inside its
transaction; each schedules its own work on commit. Celery runs `route_call` (a call looks for
an agent) and `offer_next_call` (a freed agent looks for a call). Every deadline (offer expiry,
the wait for a busy last agent, the wrap-up limit) is a database column, and `sweep`, run every
second by Celery beat, acts on the ones that passed and redoes routing whose message was lost
(never published because the broker was away, or lost with a killed worker), so a restarted or
killed worker, or a broker outage, loses nothing. With nothing in flight a sweep is one query.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from datetime import timedelta

from django.db import connection, transaction
from django.utils import timezone

from infrastructure import broadcast
from routing import (
    agent_status,
    callbacks,
    calls,
    decisions,
    handoff,
    offers,
    policy,
    roles,
    screens,
    selectors,
    unseen_offers,
)
from routing.decisions import RoutingPass
from routing.models import WAITING_REASONS, Agent, Call, DecisionReason
from routing.states import FINAL_STATES, AgentStatus, CallState, OfferState

logger = logging.getLogger(__name__)

# Only one sweeper works at a time, whichever worker beat handed it to.
SWEEP_LOCK_KEY = 4_000_001
# How many agents a call tries when offers to them lose a race with another router.
OFFER_ATTEMPTS = 5
# Work the Celery messages should have done this long ago was lost: the sweeper does it.
LOST_AFTER = timedelta(seconds=2)
# Why an agent's status changes when the telephony system ends their call.
CALL_ENDED = "call_ended"


def call_arrived(call: Call) -> None:
    """`call` (locked) reached its queue: it waits there, and the router looks for an agent once
    this commits. A call whose message is lost is routed by the sweeper."""
    if call.state == CallState.RINGING or call.queued_at is None:
        now = timezone.now()
        if call.state == CallState.RINGING:
            calls.move_call(call, CallState.QUEUED, now=now)
        call.queued_at = call.queued_at or now
        call.save(update_fields=["state", "state_changed_at", "queued_at"])
    handoff.request_routing(call_id=call.id)


def call_answered(call: Call) -> None:
    """The telephony system connected `call` to `call.agent`."""
    now = timezone.now()
    agent_id = call.agent_id
    closed = offers.close_offers_of_call(call=call, now=now, accepting=agent_id)
    for offer in closed.offers:
        if offer.state == OfferState.WITHDRAWN:
            handoff.request_offer_for_agent(agent_id=offer.agent_id)
    # Someone accepted but the telephony system connected another agent: free the first one.
    # Every agent this answer changes is locked at once, in id order.
    accepted_elsewhere = sorted(closed.accepted_by - {agent_id})
    agents = selectors.agents_for_update(
        accepted_elsewhere if agent_id is None else [*accepted_elsewhere, agent_id]
    )
    for other_id in accepted_elsewhere:
        other = agents.get(other_id)
        if other is not None and other.status == AgentStatus.BUSY:
            agent_status.set_status(
                agent=other, status=AgentStatus.AVAILABLE, reason="answered_elsewhere"
            )
    _stop_waiting_for_last_agent(call, why="answered")
    if agent_id is None:
        return
    if agent_id not in closed.accepted_by:
        decisions.record_decision(
            call=call, reason=DecisionReason.TELEPHONY_ANSWERED, agent_id=agent_id, now=now
        )
    _take_call(
        call, agents[agent_id], reason="call_answered", now=now, customer_ids=closed.customer_ids
    )


def call_transferred(call: Call, *, from_agent_id: int | None) -> None:
    """The telephony system handed `call` (locked) from the agent `from_agent_id` to
    `call.agent`: the first agent's part is over, as if the call had ended for them; the new
    agent is on it and sees the caller."""
    now = timezone.now()
    withdrawn = offers.withdraw_offers_of_call(call=call, now=now, handed_over_by=from_agent_id)
    for agent_id in withdrawn.freed:
        handoff.request_offer_for_agent(agent_id=agent_id)
    offers.release_accepted_handoffs(waiting=withdrawn.handoffs_accepted)
    _stop_waiting_for_last_agent(call, why="answered")
    # Both agents at once, in id order: another transfer between the same two agents locks
    # them in the same order.
    agents = selectors.agents_for_update(
        [agent_id for agent_id in (from_agent_id, call.agent_id) if agent_id is not None]
    )
    if from_agent_id in agents and from_agent_id != call.agent_id:
        _leave_call(
            call,
            agents[from_agent_id],
            reason="call_transferred",
            now=now,
            customer_ids=withdrawn.customer_ids,
        )
    if call.agent_id in agents and call.agent_id != from_agent_id:
        _take_call(
            call,
            agents[call.agent_id],
            reason="call_transferred",
            now=now,
            customer_ids=withdrawn.customer_ids,
        )


def _stop_waiting_for_last_agent(call: Call, *, why: str) -> None:
    """`call` (locked, so its copy is current) no longer waits for its last agent; no write
    when it never did, as most calls."""
    if call.last_agent_wait_until is not None:
        screens.stop_waiting_for_last_agent(call, why=why)
        Call.objects.filter(id=call.id).update(last_agent_wait_until=None)


def _take_call(
    call: Call, agent: Agent, *, reason: str, now, customer_ids: list[int] | None
) -> None:
    """`agent` (locked) is connected to `call`: busy, with nothing else ringing for them, and
    no other call they accepted still theirs. The telephony system's fact wins over an accept
    that raced it: that caller goes back to waiting at their place in the queue."""
    agent_status.set_status(agent=agent, status=AgentStatus.BUSY, reason=reason, now=now)
    offers.let_go_of_other_calls(agent_id=agent.id, besides=call.id, now=now)
    screens.show_call(call=call, agent=agent, customer_ids=customer_ids)


def _leave_call(
    call: Call,
    agent: Agent,
    *,
    reason: str,
    now,
    customer_ids: list[int] | None,
    changed_by=None,
) -> None:
    """`agent` (locked) is no longer on `call`: wrap-up after a conversation, available when
    the caller was never connected, busy still while another call is theirs (checked in the
    status change's own statement). `changed_by`: the person who ended the call for them."""
    if agent.status != AgentStatus.BUSY:
        return
    if call.connected_at is None:
        hung_up = call.state in FINAL_STATES and reason == CALL_ENDED
        agent_status.set_status(
            agent=agent,
            status=AgentStatus.AVAILABLE,
            reason="caller_hung_up" if hung_up else reason,
            changed_by=changed_by,
            unless_in_hand_besides=call.id,
        )
        return
    if not agent_status.set_status(
        agent=agent,
        status=AgentStatus.WRAP_UP,
        reason=reason,
        now=now,
        changed_by=changed_by,
        unless_in_hand_besides=call.id,
        wrap_up_call=call.id,
    ):
        return
    screens.show_call(
        call=call,
        agent=agent,
        state=CallState.WRAP_UP,
        handed_over=agent.id != call.agent_id,
        customer_ids=customer_ids,
    )


def call_ended(call: Call, *, reason: str = CALL_ENDED, changed_by=None) -> None:
    """The call ended or was abandoned: withdraw any offer, start the agent's wrap-up.
    `reason` and `changed_by`: what the agent's status change records (a supervisor who ended
    a call the telephony system forgot, telephony.lost_calls)."""
    now = timezone.now()
    withdrawn = offers.withdraw_offers_of_call(call=call, now=now, handed_over_by=call.agent_id)
    for agent_id in withdrawn.freed:
        handoff.request_offer_for_agent(agent_id=agent_id)
    offers.release_accepted_handoffs(waiting=withdrawn.handoffs_accepted)
    _stop_waiting_for_last_agent(call, why="ended")
    if call.agent_id is None:
        return
    agent = selectors.agents_for_update([call.agent_id])[call.agent_id]
    _leave_call(
        call,
        agent,
        reason=reason,
        now=now,
        customer_ids=withdrawn.customer_ids,
        changed_by=changed_by,
    )


def call_answered_after_it_ended(call: Call) -> None:
    """`call` (locked) ended before its answer arrived: the end overtook it on the way, and
    freed its agent as if the caller had hung up while waiting. They talked to the caller after
    all, so they get the wrap-up they would have had (to write the note the next colleague
    reads), unless they have moved on since (another call, a break) or it would be over by now."""
    now = timezone.now()
    if call.agent_id is None or call.ended_at is None:
        return
    limit = selectors.wrap_up_seconds_of(call)
    if call.state_changed_at < now - timedelta(seconds=limit):
        return
    agent = selectors.agents_for_update([call.agent_id]).get(call.agent_id)
    if agent is None or agent.status != AgentStatus.AVAILABLE:
        return
    if selectors.calls_in_hand(agent.id).exists():
        return
    agent_status.set_status(agent=agent, status=AgentStatus.BUSY, reason="call_answered", now=now)
    offers.let_go_of_other_calls(agent_id=agent.id, besides=call.id, now=now)
    _leave_call(call, agent, reason=CALL_ENDED, now=now, customer_ids=None)


def route_call(call_id: int) -> None:
    """Celery entry point: offer the call to the right agent, or leave it waiting."""
    started = time.monotonic()
    with transaction.atomic():
        # Waits for a lock on the call (held briefly: by the webhook, or by another router that
        # then leaves it offered); never waits for an agent, so no lock cycle can form.
        call, latest_reason, last_agent = selectors.call_to_route_for_update(
            call_id, now=timezone.now()
        )
        if call is None:
            return
        if call.state != CallState.QUEUED or call.queue is None:
            return
        _route(call, latest_reason=latest_reason, last_agent=last_agent, started=started)


def _route(
    call: Call, *, latest_reason: str | None, last_agent: dict | None, started: float
) -> None:
    now = timezone.now()
    first = latest_reason is None
    # Something changed since the router last left this call waiting: say what happens now.
    news = latest_reason not in WAITING_REASONS
    routing_pass = None
    if first:
        # Every decision on the call is made from here on, in this transaction, and the card
        # names the same last agent: both handed on rather than read back.
        routing_pass = RoutingPass(last_agent=last_agent)
        call.last_agent_id = last_agent["id"] if last_agent else None
    in_last_agent_phase = call.last_agent_id is not None and (
        first or not selectors.call_fell_back_to_queue(call.id)
    )
    if in_last_agent_phase:
        if _route_to_last_agent(
            call, first=first, started=started, now=now, routing_pass=routing_pass
        ):
            if call.state != CallState.OFFERED:
                calls.save_call(call)
            return
        # The call has just been opened to the queue: whatever happens next is news.
        news = True
    # Every offer comes with a decision: a call the router never decided on has refused none.
    excluded = [] if first else selectors.agents_refused_call(call.id)
    for _attempt in range(OFFER_ATTEMPTS):
        agent = selectors.longest_idle_agent_for_update(
            queue_id=call.queue_id, excluded_agent_ids=excluded
        )
        if agent is None:
            break
        if offers.make_offer(
            call=call,
            agent=agent,
            reason=DecisionReason.LONGEST_IDLE,
            started=started,
            routing_pass=routing_pass,
        ):
            return
        # Another router's offer to this agent committed after this statement's snapshot:
        # the unique constraint refused the second offer. Look again with a fresh snapshot.
        excluded.append(agent.id)
    if news:
        decisions.record_decision(
            call=call,
            reason=DecisionReason.NO_AGENT_WAITING,
            started=started,
            now=now,
            routing_pass=routing_pass,
        )
        broadcast.notify_supervisors(queue_id=call.queue_id)
    calls.save_call(call)


def _route_to_last_agent(
    call: Call, *, first: bool, started: float, now, routing_pass: RoutingPass | None
) -> bool:
    """Offer to, or keep waiting for, the caller's last agent, by the policy's last-agent step.
    False: go to the queue."""
    last_agent_id = call.last_agent_id
    locked = selectors.agent_for_update_with_standing(
        agent_id=last_agent_id, queue_id=call.queue_id
    )
    agent, standing = locked if locked is not None else (None, None)
    hold = policy.hold_rule(customer=call.customer, queue=call.queue)

    def next_step() -> policy.LastAgentStep:
        return policy.last_agent_step(
            standing, hold=hold, first=first, wait_until=call.last_agent_wait_until, now=now
        )

    step = next_step()
    if routing_pass is not None and step.action != policy.OFFER:
        _tell_last_agent_of_a_call_back(call, routing_pass.last_agent, standing)
    if step.action == policy.OFFER:
        screens.stop_waiting_for_last_agent(call, why="offered")
        if offers.make_offer(
            call=call, agent=agent, reason=step.reason, started=started, routing_pass=routing_pass
        ):
            return True
        # Another router's offer to them committed first: they are ringing for someone else.
        standing = replace(standing, ringing=True)
        step = next_step()
    if step.action == policy.KEEP_WAITING:
        return True
    if step.action == policy.HOLD:
        call.last_agent_wait_until = now + timedelta(seconds=step.wait_seconds)
        decisions.record_decision(
            call=call,
            reason=step.reason,
            agent_id=last_agent_id,
            started=started,
            now=now,
            detail={**step.detail, "wait_until": call.last_agent_wait_until.isoformat()},
            routing_pass=routing_pass,
        )
        screens.show_caller_waiting(call=call, agent_id=last_agent_id)
        broadcast.notify_supervisors(queue_id=call.queue_id)
        return True
    decisions.record_decision(
        call=call,
        reason=step.reason,
        agent_id=last_agent_id,
        # Timed like an offer when the hold rule decided it; passing over an agent is not.
        started=started if step.hold is not None else None,
        now=now,
        detail=step.detail,
        routing_pass=routing_pass,
    )
    screens.stop_waiting_for_last_agent(call, why="queue")
    return False


def _tell_last_agent_of_a_call_back(
    call: Call, last_agent: dict | None, standing: selectors.AgentStanding | None
) -> None:
    """A caller whose last call left something to do (a call back promised, a matter open)
    rings while their last agent is busy: at the router's first look the agent hears who is
    calling back, and about what, whoever takes the call. An agent offered the call sees it
    on the card instead; one away or no longer taking calls is not told."""
    if last_agent is None or last_agent["follow_up"] is None:
        return
    if standing is not None and (
        not standing.takes_calls or standing.status in (AgentStatus.OFFLINE, AgentStatus.BREAK)
    ):
        return
    screens.tell_of_a_call_back(
        call=call, agent_id=last_agent["id"], follow_up=last_agent["follow_up"]
    )


def offer_next_call(agent_id: int) -> None:
    """Celery entry point: an agent became free; offer them the waiting call that is theirs."""
    started = time.monotonic()
    with transaction.atomic():
        agent = (
            Agent.objects.select_for_update(skip_locked=True)
            .filter(roles.takes_calls(), id=agent_id, status=AgentStatus.AVAILABLE)
            .first()
        )
        if agent is None or selectors.open_offers().filter(agent=agent).exists():
            return
        now = timezone.now()
        call, is_their_caller = selectors.waiting_call_for_agent_for_update(agent=agent, now=now)
        if call is None:
            return
        call = Call.objects.select_related("queue").get(id=call.id)
        if is_their_caller:
            reason = DecisionReason.WAITING_LAST_AGENT_FREED
        else:
            reason = DecisionReason.WAITING_FIFO
            if call.last_agent_wait_until is not None:
                decisions.record_decision(
                    call=call,
                    reason=DecisionReason.LAST_AGENT_WAIT_EXPIRED,
                    agent_id=call.last_agent_id,
                    now=now,
                )
        screens.stop_waiting_for_last_agent(call, why="offered")
        offers.make_offer(call=call, agent=agent, reason=reason, started=started)


def sweep() -> dict[str, int]:
    """Act on every deadline that passed and redo lost routing. Safe to run anywhere, any time:
    one sweeper at a time, and each step re-checks under lock."""
    if not selectors.anything_to_sweep(now=timezone.now()):
        return {}
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [SWEEP_LOCK_KEY])
        if not cursor.fetchone()[0]:
            return {}
    try:
        return _sweep()
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [SWEEP_LOCK_KEY])


def _sweep() -> dict[str, int]:
    now = timezone.now()
    done = {
        "timed_out": 0,
        "withdrawn": 0,
        "returned": 0,
        "waits_ended": 0,
        "wrap_ups_ended": 0,
        "rerouted": 0,
        "matched": 0,
        "callbacks_retried": 0,
    }
    done["withdrawn"] = offers.withdraw_offers_to_agents_on_a_call()
    done["returned"] = offers.return_calls_accepted_by_agents_on_another_call()
    expired = selectors.open_offers().filter(expires_at__lte=now).values_list("id", flat=True)
    for offer_id in list(expired[:200]):
        done["timed_out"] += offers.time_out_offer(offer_id=offer_id)
    waits_over = selectors.waiting_calls().filter(last_agent_wait_until__lte=now)
    for call_id in list(waits_over.values_list("id", flat=True)[:200]):
        route_call(call_id)
        done["waits_ended"] += 1
    for agent_id in selectors.agents_with_wrap_up_over(now=now):
        done["wrap_ups_ended"] += agent_status.end_wrap_up_if_over(agent_id=agent_id)
    waiting = selectors.waiting_calls_with_latest_decision()
    lost = [c.id for c in waiting if c.owed_a_decision and (c.since or now) <= now - LOST_AFTER]
    for call_id in lost[:200]:
        route_call(call_id)
        done["rerouted"] += 1
    for agent_id in _free_agents_with_waiting_calls(waiting, now=now):
        offer_next_call(agent_id)
        done["matched"] += 1
    done["callbacks_retried"] = callbacks.retry_due_callbacks(now=now)
    done["screens_asked"] = unseen_offers.ask_screens_about_ringing_offers(now=now)
    if any(done.values()):
        logger.info("router sweep: %s", done)
    return done


def _free_agents_with_waiting_calls(waiting: list[selectors.WaitingCall], *, now) -> list[int]:
    """Agents idle while a call they could take has waited a while: their `offer_next_call`
    was lost, or the agent was locked when the call looked for one."""
    settled = [
        call
        for call in waiting
        if not call.owed_a_decision and call.since is not None and call.since <= now - LOST_AFTER
    ]
    queue_ids = {call.queue_id for call in settled if call.last_agent_wait_until is None}
    last_agent_ids = {call.last_agent_id for call in settled if call.last_agent_wait_until}
    if not queue_ids and not last_agent_ids:
        return []
    free = selectors.offerable_agents().filter(status=AgentStatus.AVAILABLE)
    by_queue = set(free.filter(queues__in=queue_ids).values_list("id", flat=True)[:100])
    by_caller = set(free.filter(id__in=last_agent_ids).values_list("id", flat=True)[:100])
    return sorted(by_queue | by_caller)
