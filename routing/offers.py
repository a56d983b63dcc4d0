"""Offers: ringing an agent for a call, and every way an offer ends (accepted, declined, rung
out, withdrawn). A refused offer puts the caller back in the queue and routes them on; an agent
who lets one ring out is made not ready, so the next caller is not offered to an empty chair."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from customers.audit import context_access_insert_sql, context_access_params
from customers.models import AccessReason, Customer
from infrastructure import broadcast
from infrastructure.database import rows
from infrastructure.errors import Refused
from infrastructure.log_fields import call_fields
from infrastructure.metrics import (
    OFFERS,
    SCREEN_POP_SECONDS,
    count_on_commit,
    observe_since_on_commit,
)
from routing import agent_status, calls, decisions, handoff, messages, selectors
from routing.decisions import RoutingPass
from routing.models import Agent, Call, DecisionReason, Offer, RoutingDecision
from routing.states import AgentStatus, CallState, OfferState, check_call_move, check_offer_move

logger = logging.getLogger(__name__)

OFFER_NOT_RINGING = "That offer is no longer ringing."

# The offer, the call moved to offered and the decision that says why, in one round trip and
# without a savepoint: a conflict with either open-offer constraint inserts no offer, and then
# neither the call nor the decisions change (both depend on the offer's row). Written as SQL:
# it runs on every offer, and the ORM took longer to build its three statements than
# PostgreSQL took to run them.
_OFFER_SQL = f"""
    WITH offer AS (
        INSERT INTO {Offer._meta.db_table} (call_id, agent_id, state, offered_at, expires_at)
        VALUES (%(call)s, %(agent)s, %(offered)s, %(now)s::timestamptz, %(expires_at)s)
        ON CONFLICT DO NOTHING
        RETURNING id
    ), call_offered AS (
        UPDATE {Call._meta.db_table}
        SET state = %(state)s, state_changed_at = %(now)s::timestamptz,
            last_agent_id = %(last_agent)s,
            last_agent_wait_until = %(wait_until)s, queued_at = %(queued_at)s,
            agent_id = %(call_agent)s
        WHERE id = %(call)s AND EXISTS (SELECT 1 FROM offer)
    ), decision AS (
        INSERT INTO {RoutingDecision._meta.db_table}
            (call_id, agent_id, offer_id, reason, decided_at, caller_waited_ms, took_ms, detail)
        SELECT %(call)s::bigint, %(agent)s::bigint, offer.id, %(reason)s::varchar,
            %(now)s::timestamptz, %(waited)s::integer, %(took)s::integer, %(detail)s::jsonb
        FROM offer
    ), screen_pop_seen AS (
        {context_access_insert_sql(call="%(call)s::bigint", when="EXISTS (SELECT 1 FROM offer)")}
    )
    SELECT id FROM offer
"""


def make_offer(
    *,
    call: Call,
    agent: Agent,
    reason: str,
    started: float | None = None,
    detail: dict[str, Any] | None = None,
    routing_pass: RoutingPass | None = None,
) -> Offer | None:
    """Ring `agent` for `call`. Both rows are locked by the caller; the partial unique
    constraints refuse a second open offer for either, in which case nothing is offered.
    `routing_pass`: what the router already read and decided in this transaction."""
    now = timezone.now()
    offer = Offer(
        call=call,
        agent=agent,
        state=OfferState.OFFERED,
        offered_at=now,
        expires_at=now + timedelta(seconds=call.queue.offer_timeout_seconds),
    )
    offered_call = {
        "state": CallState.OFFERED,
        "last_agent": call.last_agent_id,
        "wait_until": call.last_agent_wait_until,
        "queued_at": call.queued_at,
        "call_agent": call.agent_id,
    }
    check_call_move(call.state, CallState.OFFERED)
    customer_ids = messages.customer_ids_on_card(call)
    with rows.prepared_cursor() as cursor:
        cursor.execute(
            _OFFER_SQL,
            {
                "call": call.id,
                "agent": agent.id,
                "offered": offer.state,
                "now": now,
                "expires_at": offer.expires_at,
                **offered_call,
                "reason": reason,
                "waited": decisions.waited_ms(call, now),
                "took": decisions.took_ms(started),
                "detail": json.dumps(detail or {}, cls=DjangoJSONEncoder),
                # The screen-pop is a read of the caller's context by this agent: recorded
                # with the offer that shows it.
                **context_access_params(
                    customer_ids=customer_ids, user=agent.user, reason=AccessReason.OFFER
                ),
            },
        )
        inserted = cursor.fetchone()
    if inserted is None:
        return None
    offer.id = inserted[0]
    offer._state.adding = False
    calls.move_call(call, CallState.OFFERED, now=now)
    decisions.log_decision(call, reason, agent.id, offered=True, routing_pass=routing_pass)
    caller = messages.caller_for_call(
        call,
        customer_ids=customer_ids,
        last_agent=messages.UNREAD if routing_pass is None else routing_pass.last_agent,
    )
    hold_rule = messages.hold_explanation_for(
        call,
        agent_id=agent.id,
        caller=caller,
        decisions_made=None if routing_pass is None else routing_pass.decisions,
    )
    broadcast.send_to_agent(
        agent.id, messages.offer_message(offer, reason=reason, caller=caller, hold_rule=hold_rule)
    )
    count_on_commit(OFFERS.labels(outcome="made"))
    if routing_pass is not None:
        # The call's first routing: the screen-pop, timed from the statement that recorded the
        # call's first event (it made the call's row: `created_at`) to the message handed to the
        # agent's socket above (it leaves on commit, before this is observed).
        observe_since_on_commit(SCREEN_POP_SECONDS, call.created_at)
    broadcast.notify_supervisors(queue_id=call.queue_id, agent_id=agent.id)
    return offer


def close_offer(*, offer: Offer, outcome: str, now: datetime) -> None:
    check_offer_move(offer.state, outcome)
    offer.state = outcome
    offer.responded_at = now
    offer.save(update_fields=["state", "responded_at"])
    _tell_offer_ended(offer, call=offer.call)


def _tell_offer_ended(offer: Offer, *, call: Call) -> None:
    """Every offer ends here, whichever way (its state: accepted, declined, timed_out,
    withdrawn), and is counted here."""
    count_on_commit(OFFERS.labels(outcome=offer.state))
    broadcast.send_to_agent(
        offer.agent_id,
        {
            "type": "offer_ended",
            "offer_id": offer.id,
            "call_id": call.telephony_call_id,
            "outcome": offer.state,
        },
    )


@dataclass(frozen=True)
class ClosedOffers:
    """What closing the offers ringing for a call found, read in the same statement."""

    # The offers closed, in id order, each with its outcome.
    offers: list[Offer]
    # Agents whose offer of the call is accepted: before this statement, or by it.
    accepted_by: frozenset[int]
    # `messages.customer_ids_on_card`: the call's customer, else its candidates.
    customer_ids: list[int]


# Every offer still ringing for a locked call closed (accepted for `accepting`, else
# `outcome`), with what answering or ending the call needs to know besides: the agents who had
# accepted it, and the customers on its card. One statement for what were one per offer and
# three reads; the call is locked, so no other transaction is waiting on its offers.
_CLOSE_OFFERS_OF_CALL_SQL = f"""
    WITH closed AS (
        UPDATE {Offer._meta.db_table}
        SET state = CASE WHEN agent_id = %(accepting)s::bigint THEN %(accepted)s
                ELSE %(outcome)s END,
            responded_at = %(now)s::timestamptz
        WHERE call_id = %(call)s AND state = %(offered)s
        RETURNING id, agent_id, offered_at, expires_at, state
    )
    SELECT
        (SELECT COALESCE(json_agg(json_build_array(id, agent_id, offered_at, expires_at, state)
            ORDER BY id), '[]')::text FROM closed),
        ARRAY(SELECT accepted.agent_id FROM {Offer._meta.db_table} accepted
            WHERE accepted.call_id = %(call)s AND accepted.state = %(accepted)s),
        ARRAY(SELECT candidate.id
            FROM {Call.candidates.through._meta.db_table} on_number
            JOIN {Customer._meta.db_table} candidate ON candidate.id = on_number.customer_id
            WHERE on_number.call_id = %(call)s AND %(read_candidates)s::boolean
            ORDER BY candidate.name, candidate.id)
"""


def close_offers_of_call(
    *,
    call: Call,
    now: datetime,
    outcome: str = OfferState.WITHDRAWN,
    accepting: int | None = None,
) -> ClosedOffers:
    """Close every offer ringing for `call` (locked by the caller): `accepting`'s accepted,
    the others `outcome`; each agent is told. Sends nothing else: the caller says what follows
    for each agent."""
    check_offer_move(OfferState.OFFERED, outcome)
    with rows.prepared_cursor() as cursor:
        cursor.execute(
            _CLOSE_OFFERS_OF_CALL_SQL,
            {
                "call": call.id,
                "accepting": accepting,
                "accepted": OfferState.ACCEPTED,
                "outcome": outcome,
                "offered": OfferState.OFFERED,
                "now": now,
                "read_candidates": call.customer_id is None,
            },
        )
        closed_json, accepted_before, candidate_ids = cursor.fetchone()
    offers = []
    for offer_id, agent_id, offered_at, expires_at, state in json.loads(closed_json):
        offer = Offer(
            id=offer_id,
            call=call,
            agent_id=agent_id,
            state=state,
            offered_at=datetime.fromisoformat(offered_at),
            expires_at=datetime.fromisoformat(expires_at),
            responded_at=now,
        )
        offer._state.adding = False
        offers.append(offer)
        _tell_offer_ended(offer, call=call)
    accepted_now = {offer.agent_id for offer in offers if offer.state == OfferState.ACCEPTED}
    return ClosedOffers(
        offers=offers,
        accepted_by=frozenset(accepted_before) | accepted_now,
        customer_ids=[call.customer_id] if call.customer_id is not None else candidate_ids,
    )


def _lock_offer_with_call(*, offer_id: int, agent_id: int | None) -> tuple[Offer, Call]:
    """Lock the call, then the offer (the lock order), and check the offer still rings."""
    call_id = Offer.objects.filter(id=offer_id).values_list("call_id", flat=True).first()
    if call_id is None:
        raise Refused(OFFER_NOT_RINGING, field="offer_id")
    call = Call.objects.select_for_update(of=("self",)).select_related("queue").get(id=call_id)
    offer = Offer.objects.select_for_update().filter(id=offer_id).first()
    if offer is None or offer.state != OfferState.OFFERED:
        raise Refused(OFFER_NOT_RINGING, field="offer_id")
    if agent_id is not None and offer.agent_id != agent_id:
        raise Refused(OFFER_NOT_RINGING, field="offer_id")
    offer.call = call
    return offer, call


def refuse_offer(*, offer: Offer, call: Call, outcome: str, now: datetime) -> None:
    """The agent did not take the call, or can no longer: put it back in the queue and route
    it on."""
    close_offer(offer=offer, outcome=outcome, now=now)
    was_last_agent = offer.agent_id == call.last_agent_id
    if outcome == OfferState.WITHDRAWN:
        reason = DecisionReason.AGENT_ON_ANOTHER_CALL
    elif outcome == OfferState.TIMED_OUT:
        reason = DecisionReason.OFFER_TIMED_OUT
    elif was_last_agent:
        reason = DecisionReason.LAST_AGENT_DECLINED
    else:
        reason = DecisionReason.OFFER_DECLINED
    decisions.record_decision(
        call=call,
        reason=reason,
        agent_id=offer.agent_id,
        now=now,
        detail={"offer_id": offer.id, "was_last_agent": was_last_agent},
    )
    calls.move_call(call, CallState.QUEUED, now=now)
    call.last_agent_wait_until = None
    handoff.request_routing(call_id=call.id)
    calls.save_call(call)
    broadcast.notify_supervisors(queue_id=call.queue_id, agent_id=offer.agent_id)


ON_ANOTHER_CALL = "You are already on a call; that offer was passed on."


def accept_offer(*, offer_id: int, agent_id: int) -> Offer:
    """The agent takes the call. The telephony system reports the real connection later with
    `call.answered`; until then the agent is busy with this call. The offer's `decision` names
    the agent the telephony system is to connect.

    An agent already on a call (see `selectors.calls_in_hand`) cannot take a second one: the
    offer is withdrawn and the caller routed on, and that stands although the accept is refused.

    The accept stands once it commits: a screen that could not be told afterwards (a failing
    on-commit message) is logged, not turned into an error for an agent who now has the call.
    """
    committed = False

    def mark_committed() -> None:
        nonlocal committed
        committed = True

    try:
        with transaction.atomic():
            # Registered first, so it runs first: whatever fails after it failed after commit.
            transaction.on_commit(mark_committed)
            offer, taken = _accept_offer(offer_id=offer_id, agent_id=agent_id)
    except Exception:
        if not committed:
            raise
        logger.exception(
            "offer %s: accepted, but a message after commit failed",
            offer_id,
            extra=call_fields(agent_id=agent_id),
        )
    if not taken:
        raise Refused(ON_ANOTHER_CALL, field="offer_id")
    return offer


def _accept_offer(*, offer_id: int, agent_id: int) -> tuple[Offer, bool]:
    offer, call = _lock_offer_with_call(offer_id=offer_id, agent_id=agent_id)
    agent = Agent.objects.select_for_update().get(id=agent_id)
    now = timezone.now()
    if agent.status == AgentStatus.BUSY or selectors.calls_in_hand(agent_id).exists():
        refuse_offer(offer=offer, call=call, outcome=OfferState.WITHDRAWN, now=now)
        return offer, False
    close_offer(offer=offer, outcome=OfferState.ACCEPTED, now=now)
    call.agent = agent
    call.last_agent_wait_until = None
    calls.save_call(call)
    decision = getattr(offer, "decision", None)
    if decision is not None:
        decision.detail = {
            **decision.detail,
            "accepted_at": now.isoformat(),
            "answered_in_ms": int((now - offer.offered_at).total_seconds() * 1000),
        }
        decision.save(update_fields=["detail"])
    agent_status.set_status(agent=agent, status=AgentStatus.BUSY, reason="offer_accepted", now=now)
    return offer, True


@transaction.atomic
def decline_offer(*, offer_id: int, agent_id: int) -> Offer:
    offer, call = _lock_offer_with_call(offer_id=offer_id, agent_id=agent_id)
    Agent.objects.select_for_update().get(id=agent_id)
    now = timezone.now()
    refuse_offer(offer=offer, call=call, outcome=OfferState.DECLINED, now=now)
    # Still available: there may be another caller waiting for them.
    handoff.request_offer_for_agent(agent_id=agent_id)
    return offer


def _offers_call_unless_locked(offer_id: int) -> Call | None:
    """The offer's call, locked first (the lock order), or None when another transaction holds
    it: the sweeper skips such a call this round rather than wait."""
    call_id = Offer.objects.filter(id=offer_id).values_list("call_id", flat=True).first()
    return (
        Call.objects.select_for_update(skip_locked=True, of=("self",))
        .select_related("queue")
        .filter(id=call_id)
        .first()
    )


def time_out_offer(*, offer_id: int) -> bool:
    """An offer rang out: the call moves on and the agent is made not ready ("missed call"), so
    the next caller is not offered to an empty chair. Does nothing if the offer was answered
    meanwhile."""
    with transaction.atomic():
        call = _offers_call_unless_locked(offer_id)
        if call is None:
            return False
        now = timezone.now()
        offer = (
            Offer.objects.select_for_update()
            .filter(id=offer_id, state=OfferState.OFFERED, expires_at__lte=now)
            .first()
        )
        if offer is None:
            return False
        offer.call = call
        agent = Agent.objects.select_for_update().get(id=offer.agent_id)
        refuse_offer(offer=offer, call=call, outcome=OfferState.TIMED_OUT, now=now)
        if agent.status == AgentStatus.AVAILABLE:
            agent_status.not_ready_after_missed_call(agent, now=now)
        return True


def accepted_call_missed(*, call_id: int, agent_id: int, why: str) -> bool:
    """The agent accepted `call_id` but their phone did not take it (no answer, busy, failed):
    as if the offer had rung out. The caller goes back to the queue and is routed on (no longer
    held for this agent), and the agent is moved to break. Does nothing unless the call still
    waits for this agent, so a repeated report changes nothing."""
    with transaction.atomic():
        call = (
            Call.objects.select_for_update(of=("self",))
            .select_related("queue")
            .filter(id=call_id, agent_id=agent_id, state=CallState.OFFERED)
            .first()
        )
        if call is None:
            return False
        agent = Agent.objects.select_for_update().get(id=agent_id)
        now = timezone.now()
        _back_to_queue(
            call, agent_id=agent_id, reason=DecisionReason.OFFER_TIMED_OUT, why=why, now=now
        )
        if agent.status == AgentStatus.BUSY:
            agent_status.not_ready_after_missed_call(agent, now=now)
        broadcast.notify_supervisors(queue_id=call.queue_id, agent_id=agent_id)
        return True


def _back_to_queue(call: Call, *, agent_id: int, reason: str, why: str, now: datetime) -> None:
    """`call` (locked), accepted by `agent_id` and not connected to them, is no longer theirs:
    it waits again, at its place in the queue (its `queued_at` is kept), no longer held for
    anyone, and is routed on."""
    decisions.record_decision(
        call=call,
        reason=reason,
        agent_id=agent_id,
        now=now,
        detail={"why": why, "was_last_agent": agent_id == call.last_agent_id},
    )
    calls.move_call(call, CallState.QUEUED, now=now)
    call.agent = None
    call.last_agent_wait_until = None
    handoff.request_routing(call_id=call.id)
    calls.save_call(call)


CONNECTED_TO_ANOTHER_CALL = "telephony_connected_another_call"


def return_calls_accepted_by_agents_on_another_call() -> int:
    """Calls accepted by an agent whom the telephony system has since connected to another call
    (one that was locked when they were connected): back to waiting, in the lock order."""
    returned = 0
    for call_id in list(selectors.calls_accepted_by_agents_on_another_call()[:200]):
        with transaction.atomic():
            call = (
                Call.objects.select_for_update(skip_locked=True, of=("self",))
                .filter(id=call_id)
                .first()
            )
            if call is None or call.agent_id is None:
                continue
            Agent.objects.select_for_update().get(id=call.agent_id)
            if not selectors.calls_accepted_by_agents_on_another_call().filter(id=call.id).exists():
                continue
            _return_accepted_call(call, agent_id=call.agent_id, now=timezone.now())
            returned += 1
    return returned


def let_go_of_other_calls(*, agent_id: int, besides: int, now: datetime) -> None:
    """The agent (locked by the caller) is now on the call `besides`: stop the offers of other
    calls ringing for them and route those callers on. A call they had accepted, not yet
    connected (the telephony system connected them to this one just as they accepted it), is no
    longer theirs: the phone system's fact wins, and that caller goes back to waiting at their
    place, so the agent never holds two calls.

    The calls are locked after the agent, against the lock order, so with SKIP LOCKED: one
    another transaction holds is left to the sweeper (`withdraw_offers_to_agents_on_a_call`,
    `return_calls_accepted_by_agents_on_another_call`), and an accept of its offer is refused."""
    other = selectors.other_calls_of(agent_id, besides=besides)
    for offer_id, call_id in other.ringing:
        call = (
            Call.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("queue")
            .filter(id=call_id)
            .first()
        )
        offer = (
            None
            if call is None
            else Offer.objects.select_for_update(skip_locked=True)
            .filter(id=offer_id, state=OfferState.OFFERED)
            .first()
        )
        if offer is None:
            continue
        offer.call = call
        refuse_offer(offer=offer, call=call, outcome=OfferState.WITHDRAWN, now=now)
    for call_id in other.accepted:
        call = (
            selectors.calls_accepted_by(agent_id)
            .select_for_update(skip_locked=True, of=("self",))
            .filter(id=call_id)
            .first()
        )
        if call is not None:
            _return_accepted_call(call, agent_id=agent_id, now=now)


def _return_accepted_call(call: Call, *, agent_id: int, now: datetime) -> None:
    _back_to_queue(
        call,
        agent_id=agent_id,
        reason=DecisionReason.AGENT_ON_ANOTHER_CALL,
        why=CONNECTED_TO_ANOTHER_CALL,
        now=now,
    )
    broadcast.notify_supervisors(queue_id=call.queue_id, agent_id=agent_id)
    logger.warning(
        "call %r: back in the queue; the telephony system connected agent %s to another call"
        " as they accepted it",
        call.telephony_call_id,
        agent_id,
        extra=call_fields(call.telephony_call_id, agent_id),
    )


def withdraw_offers_to_agents_on_a_call() -> int:
    """Offers still ringing for an agent who is on a call (one whose call was locked when they
    were connected): withdrawn, in the lock order, so their callers move on."""
    withdrawn = 0
    engaged = selectors.calls_in_hand(OuterRef("agent_id"))
    ringing = selectors.open_offers().filter(Exists(engaged.exclude(id=OuterRef("call_id"))))
    for offer_id in list(ringing.values_list("id", flat=True)[:200]):
        with transaction.atomic():
            call = _offers_call_unless_locked(offer_id)
            if call is None:
                continue
            offer = Offer.objects.select_for_update().filter(id=offer_id).first()
            if offer is None or offer.state != OfferState.OFFERED:
                continue
            Agent.objects.select_for_update().get(id=offer.agent_id)
            if not selectors.calls_in_hand(offer.agent_id).exclude(id=call.id).exists():
                continue
            offer.call = call
            refuse_offer(offer=offer, call=call, outcome=OfferState.WITHDRAWN, now=timezone.now())
            withdrawn += 1
    return withdrawn


def withdraw_offers(*, call: Call, now: datetime, outcome: str = OfferState.WITHDRAWN) -> list[int]:
    """Stop every offer ringing for `call` (locked by the caller). Returns the agents freed."""
    return withdraw_offers_of_call(call=call, now=now, outcome=outcome).freed


@dataclass(frozen=True)
class WithdrawnOffers:
    freed: list[int]
    customer_ids: list[int]


def withdraw_offers_of_call(
    *, call: Call, now: datetime, outcome: str = OfferState.WITHDRAWN
) -> WithdrawnOffers:
    """`withdraw_offers`, with the customers on the call's card read in the same statement."""
    closed = close_offers_of_call(call=call, now=now, outcome=outcome)
    for offer in closed.offers:
        broadcast.notify_supervisors(queue_id=call.queue_id, agent_id=offer.agent_id)
    return WithdrawnOffers([offer.agent_id for offer in closed.offers], closed.customer_ids)
