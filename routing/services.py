"""Writes of the router: agents' status, offers and their outcomes, wrap-up.

Lock order, everywhere a lock is waited for: call, then offer, then agent. Code that takes
locks in another order only ever uses SKIP LOCKED, so it never waits and cannot deadlock.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from customers.audit import (
    context_access_insert_sql,
    context_access_params,
    record_context_access,
    record_context_access_by_users,
)
from customers.models import AccessReason, Customer
from infrastructure.broadcast import notify_supervisors, send_to_agent
from infrastructure.database import rows
from infrastructure.errors import Invalid, NotFound, Refused
from routing import handoff, messages, selectors
from routing.models import Agent, AgentStatusChange, Call, DecisionReason, Offer, RoutingDecision
from routing.states import (
    MISSED_CALL,
    SELF_SERVICE_STATUSES,
    TALKING_STATES,
    WAITING_STATES,
    AgentStatus,
    CallState,
    OfferState,
    check_agent_move,
    check_call_move,
    check_offer_move,
    choosable_not_ready_reasons,
    default_not_ready_reason,
)

ROUTER_CALL_FIELDS = [
    "state",
    "state_changed_at",
    "last_agent",
    "last_agent_wait_until",
    "queued_at",
    "agent",
]
SUPERVISOR_REASON = "set_by_supervisor"

logger = logging.getLogger(__name__)


OFFER_NOT_RINGING = "That offer is no longer ringing."


def save_call(call: Call) -> None:
    call.save(update_fields=ROUTER_CALL_FIELDS)


def move_call(call: Call, target: str, *, now: datetime) -> None:
    check_call_move(call.state, target)
    call.state = target
    call.state_changed_at = now


# ---------------------------------------------------------------------------------------------
# Decisions and offers


def record_decision(
    *,
    call: Call,
    reason: str,
    agent_id: int | None = None,
    offer: Offer | None = None,
    started: float | None = None,
    now: datetime | None = None,
    detail: dict[str, Any] | None = None,
) -> RoutingDecision:
    now = now or timezone.now()
    decision = RoutingDecision(
        call=call,
        agent_id=agent_id,
        offer=offer,
        reason=reason,
        decided_at=now,
        caller_waited_ms=_waited_ms(call, now),
        took_ms=_took_ms(started),
        detail=detail or {},
    )
    _decided(call, reason, agent_id)
    # Written as SQL, prepared: most routings record a decision besides the offer's.
    with rows.prepared_cursor() as cursor:
        cursor.execute(
            _DECISION_SQL,
            [
                call.id,
                agent_id,
                None if offer is None else offer.id,
                reason,
                now,
                decision.caller_waited_ms,
                decision.took_ms,
                json.dumps(decision.detail, cls=DjangoJSONEncoder),
            ],
        )
        decision.id = cursor.fetchone()[0]
    decision._state.adding = False
    return decision


_DECISION_SQL = f"""
    INSERT INTO {RoutingDecision._meta.db_table}
        (call_id, agent_id, offer_id, reason, decided_at, caller_waited_ms, took_ms, detail)
    VALUES (%s, %s::bigint, %s::bigint, %s, %s, %s::integer, %s::integer, %s::jsonb)
    RETURNING id
"""


def _waited_ms(call: Call, now: datetime) -> int | None:
    if call.queued_at is None:
        return None
    return max(0, int((now - call.queued_at).total_seconds() * 1000))


def _took_ms(started: float | None) -> int | None:
    return None if started is None else int((time.monotonic() - started) * 1000)


def _decided(call: Call, reason: str, agent_id: int | None) -> None:
    """Log the decision, and note it on a call whose decisions the router keeps count of
    (`messages.remember_decisions`)."""
    known = getattr(call, "_decisions_this_routing", None)
    if known is not None:
        known.append(reason)
    logger.info(
        "call %r: routed, %s%s",
        call.telephony_call_id,
        reason,
        "" if agent_id is None else f", offered to agent {agent_id}",
    )


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
) -> Offer | None:
    """Ring `agent` for `call`. Both rows are locked by the caller; the partial unique
    constraints refuse a second open offer for either, in which case nothing is offered."""
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
                "waited": _waited_ms(call, now),
                "took": _took_ms(started),
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
    move_call(call, CallState.OFFERED, now=now)
    _decided(call, reason, agent.id)
    caller = messages.caller_for_call(call, customer_ids=customer_ids)
    hold_rule = messages.hold_explanation_for(call, agent_id=agent.id, caller=caller)
    send_to_agent(
        agent.id, messages.offer_message(offer, reason=reason, caller=caller, hold_rule=hold_rule)
    )
    notify_supervisors(queue_id=call.queue_id, agent_id=agent.id)
    return offer


def show_caller_waiting(*, call: Call, agent_id: int) -> None:
    """`call` (with its customer loaded) is held for its busy last agent `agent_id`: a quiet
    line on their screen, not an offer, so they can wrap up. A name on it is a look at the
    customer, recorded like the screen-pop."""
    message = messages.caller_waiting_message(call)
    if message["caller_name"] is not None:
        user = Agent.objects.select_related("user").get(id=agent_id).user
        record_context_access(
            customer_ids=[call.customer_id],
            user=user,
            reason=AccessReason.WAITING,
            call_id=call.id,
        )
    send_to_agent(agent_id, message)


def stop_waiting_for_last_agent(call: Call, *, why: str) -> None:
    """`call` is no longer held for its last agent (`why`: offered, queue, answered, ended):
    the waiting line leaves their screen. The caller saves the call."""
    if call.last_agent_wait_until is None:
        return
    call.last_agent_wait_until = None
    if call.last_agent_id is not None:
        send_to_agent(call.last_agent_id, messages.caller_waiting_ended_message(call, why=why))


def show_call(
    *,
    call: Call,
    agent: Agent,
    state: str | None = None,
    handed_over: bool = False,
    customer_ids: list[int] | None = None,
) -> None:
    """Put `call` and its caller on the screen of `agent`: a read of the caller's context,
    recorded like the screen-pop of an offer. Only the agent connected to the call, one it was
    offered to, or the agent who just `handed_over` the call to another is shown its caller.
    `customer_ids`: `messages.customer_ids_on_card`, when the caller read it already."""
    theirs = handed_over or agent.id == call.agent_id
    if not theirs and not call.offers.filter(agent=agent).exists():
        logger.warning("call %r: not shown to agent %s, not theirs", call.telephony_call_id, agent)
        return
    if customer_ids is None:
        customer_ids = messages.customer_ids_on_card(call)
    caller = messages.caller_for_call(call, customer_ids=customer_ids)
    if customer_ids:
        record_context_access(
            customer_ids=customer_ids, user=agent.user, reason=AccessReason.CALL, call_id=call.id
        )
    send_to_agent(agent.id, messages.call_message(call, caller=caller, state=state))


def show_ringing_call(*, call: Call, agents: list[Agent]) -> None:
    """`call` rings on the phones of `agents`, chosen by the telephony system, which routes it
    itself: each sees the caller's card (as consent allows), recorded like an offer's
    screen-pop. No offer is made; the router never routes such a call."""
    if not agents:
        return
    customer_ids = messages.customer_ids_on_card(call)
    caller = messages.caller_for_call(call, customer_ids=customer_ids)
    if customer_ids:
        record_context_access_by_users(
            customer_ids=customer_ids,
            users=[agent.user for agent in agents],
            reason=AccessReason.OFFER,
            call_id=call.id,
        )
    message = messages.ringing_message(call, caller=caller)
    for agent in agents:
        send_to_agent(agent.id, message)


def stop_ringing(*, call: Call, agent_ids: list[int]) -> None:
    """`call` no longer rings for `agent_ids` (answered, or the caller hung up): their cards go."""
    message = messages.ringing_ended_message(call)
    for agent_id in agent_ids:
        send_to_agent(agent_id, message)


def close_offer(*, offer: Offer, outcome: str, now: datetime) -> None:
    check_offer_move(offer.state, outcome)
    offer.state = outcome
    offer.responded_at = now
    offer.save(update_fields=["state", "responded_at"])
    _tell_offer_ended(offer, call=offer.call)


def _tell_offer_ended(offer: Offer, *, call: Call) -> None:
    send_to_agent(
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


def _offer_refused(*, offer: Offer, call: Call, outcome: str, now: datetime) -> None:
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
    record_decision(
        call=call,
        reason=reason,
        agent_id=offer.agent_id,
        now=now,
        detail={"offer_id": offer.id, "was_last_agent": was_last_agent},
    )
    move_call(call, CallState.QUEUED, now=now)
    call.last_agent_wait_until = None
    handoff.request_routing(call_id=call.id)
    save_call(call)
    notify_supervisors(queue_id=call.queue_id, agent_id=offer.agent_id)


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
        logger.exception("offer %s: accepted, but a message after commit failed", offer_id)
    if not taken:
        raise Refused(ON_ANOTHER_CALL, field="offer_id")
    return offer


def _accept_offer(*, offer_id: int, agent_id: int) -> tuple[Offer, bool]:
    offer, call = _lock_offer_with_call(offer_id=offer_id, agent_id=agent_id)
    agent = Agent.objects.select_for_update().get(id=agent_id)
    now = timezone.now()
    if agent.status == AgentStatus.BUSY or selectors.calls_in_hand(agent_id).exists():
        _offer_refused(offer=offer, call=call, outcome=OfferState.WITHDRAWN, now=now)
        return offer, False
    close_offer(offer=offer, outcome=OfferState.ACCEPTED, now=now)
    call.agent = agent
    call.last_agent_wait_until = None
    save_call(call)
    decision = getattr(offer, "decision", None)
    if decision is not None:
        decision.detail = {
            **decision.detail,
            "accepted_at": now.isoformat(),
            "answered_in_ms": int((now - offer.offered_at).total_seconds() * 1000),
        }
        decision.save(update_fields=["detail"])
    set_status(agent=agent, status=AgentStatus.BUSY, reason="offer_accepted", now=now)
    return offer, True


@transaction.atomic
def decline_offer(*, offer_id: int, agent_id: int) -> Offer:
    offer, call = _lock_offer_with_call(offer_id=offer_id, agent_id=agent_id)
    Agent.objects.select_for_update().get(id=agent_id)
    now = timezone.now()
    _offer_refused(offer=offer, call=call, outcome=OfferState.DECLINED, now=now)
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
        _offer_refused(offer=offer, call=call, outcome=OfferState.TIMED_OUT, now=now)
        if agent.status == AgentStatus.AVAILABLE:
            _not_ready_after_missed_call(agent, now=now)
        return True


def _not_ready_after_missed_call(agent: Agent, *, now: datetime) -> None:
    """An agent who let a call go unanswered is taken out, so the next caller is not offered to
    an empty chair; the console tells them why (`offer_timed_out`)."""
    set_status(
        agent=agent,
        status=AgentStatus.BREAK,
        reason="offer_timed_out",
        not_ready_reason=MISSED_CALL,
        now=now,
    )


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
        record_decision(
            call=call,
            reason=DecisionReason.OFFER_TIMED_OUT,
            agent_id=agent_id,
            now=now,
            detail={"why": why, "was_last_agent": agent_id == call.last_agent_id},
        )
        move_call(call, CallState.QUEUED, now=now)
        call.agent = None
        call.last_agent_wait_until = None
        handoff.request_routing(call_id=call.id)
        save_call(call)
        if agent.status == AgentStatus.BUSY:
            _not_ready_after_missed_call(agent, now=now)
        notify_supervisors(queue_id=call.queue_id, agent_id=agent_id)
        return True


def withdraw_offers_ringing_for(*, agent_id: int, now: datetime) -> int:
    """The agent (locked by the caller) is now on a call: stop the offers of other calls ringing
    for them and route those callers on. The calls are locked after the agent, against the lock
    order, so with SKIP LOCKED: an offer whose call another transaction holds is left to the
    sweeper (`withdraw_offers_to_agents_on_a_call`), and an accept of it is refused."""
    withdrawn = 0
    for offer_id, call_id in selectors.offers_ringing_for(agent_id):
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
        _offer_refused(offer=offer, call=call, outcome=OfferState.WITHDRAWN, now=now)
        withdrawn += 1
    return withdrawn


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
            _offer_refused(offer=offer, call=call, outcome=OfferState.WITHDRAWN, now=timezone.now())
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
        notify_supervisors(queue_id=call.queue_id, agent_id=offer.agent_id)
    return WithdrawnOffers([offer.agent_id for offer in closed.offers], closed.customer_ids)


# ---------------------------------------------------------------------------------------------
# Agents' status


def set_status(
    *,
    agent: Agent,
    status: str,
    reason: str,
    now: datetime | None = None,
    changed_by: Any = None,
    not_ready_reason: str = "",
    unless_in_hand_besides: int | None = None,
) -> bool:
    """Move a locked agent to `status`, with its history row and the messages. Returns whether
    anything changed. With `unless_in_hand_besides` (a call's id), nothing changes when the
    agent has another call in hand (`selectors.calls_in_hand`), checked in the same statement.

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
            },
        )
        if cursor.fetchone() is None:
            return False
    agent.status = status
    agent.status_changed_at = now
    agent.not_ready_reason = not_ready_reason
    send_to_agent(agent.id, messages.status_message(agent, reason=reason))
    notify_supervisors(agent_id=agent.id)
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
            not_ready_reason = %(not_ready_reason)s
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


@transaction.atomic
def change_status(
    *,
    agent_id: int,
    status: Any,
    changed_by: Any = None,
    reason: str = "",
    not_ready_reason: Any = "",
) -> Agent:
    """An agent chooses available, break or offline, or a supervisor chooses it for them
    (`changed_by` is someone else; the API checks they may). With break comes a
    `not_ready_reason` from the deployment's list (the first when none is given); the
    system's own reasons (missed_call) cannot be chosen.

    Leaving `available` while an offer rings declines it, so the caller is not kept waiting.
    The agent choosing available during wrap-up is Ready. Busy follows the call: an agent on a
    call keeps it until the call ends, except that a supervisor may release an agent shown busy
    with no live call (a lost hang-up, a closed browser).
    """
    if not isinstance(status, str) or status not in SELF_SERVICE_STATUSES:
        raise Invalid(
            "Only available, break or offline can be chosen; busy and wrap_up follow calls.",
            field="status",
        )
    not_ready_reason = check_not_ready_reason(status=status, not_ready_reason=not_ready_reason)
    open_offer = selectors.open_offers().filter(agent_id=agent_id).first()
    if open_offer is not None and status != AgentStatus.AVAILABLE:
        call = (
            Call.objects.select_for_update(of=("self",))
            .select_related("queue")
            .get(id=open_offer.call_id)
        )
        offer = Offer.objects.select_for_update().get(id=open_offer.id)
        agent = Agent.objects.select_for_update().get(id=agent_id)
        if offer.state == OfferState.OFFERED:
            offer.call = call
            _offer_refused(offer=offer, call=call, outcome=OfferState.DECLINED, now=timezone.now())
    else:
        agent = Agent.objects.select_for_update().filter(id=agent_id).first()
        if agent is None:
            raise NotFound("No such agent.", field="agent")
    on_behalf = changed_by is not None and changed_by.pk != agent.user_id
    if agent.status == AgentStatus.BUSY:
        if not on_behalf:
            raise Refused("You are on a call; your status changes when it ends.", field="status")
        in_hand = selectors.calls_in_hand(agent_id).values_list("state", flat=True).first()
        if in_hand in TALKING_STATES:
            raise Refused(
                "This agent is talking to a caller; their status follows the call.",
                field="status",
            )
        if in_hand is not None:
            # Released now, they would be offered another caller while this one is connected.
            raise Refused(
                "This agent accepted a call that is being connected; their status follows it.",
                field="status",
            )
    if on_behalf:
        reason = _supervisor_reason(reason)
    elif status == AgentStatus.AVAILABLE and agent.status == AgentStatus.WRAP_UP:
        reason = "ready"
    set_status(
        agent=agent,
        status=status,
        reason=reason or "set_by_agent",
        changed_by=changed_by,
        not_ready_reason=not_ready_reason,
    )
    return agent


def check_not_ready_reason(*, status: str, not_ready_reason: Any) -> str:
    """The not-ready reason a person chose, checked: one of the deployment's, and only with
    break."""
    if not_ready_reason is None or not_ready_reason == "":
        return ""
    choices = choosable_not_ready_reasons()
    if not isinstance(not_ready_reason, str) or not_ready_reason not in choices:
        raise Invalid(
            f"not_ready_reason must be one of: {', '.join(choices)}.",
            field="not_ready_reason",
        )
    if status != AgentStatus.BREAK:
        raise Invalid("A not-ready reason goes with status break.", field="not_ready_reason")
    return not_ready_reason


def _supervisor_reason(typed: str) -> str:
    typed = " ".join(typed.split())
    return (f"{SUPERVISOR_REASON}: {typed}" if typed else SUPERVISOR_REASON)[:100]


@transaction.atomic
def ready(*, agent_id: int, changed_by: Any = None) -> Agent:
    """The agent ends their wrap-up."""
    agent = Agent.objects.select_for_update().get(id=agent_id)
    if agent.status == AgentStatus.AVAILABLE:
        return agent
    if agent.status != AgentStatus.WRAP_UP:
        raise Refused("You are not in wrap-up.", field="status")
    set_status(agent=agent, status=AgentStatus.AVAILABLE, reason="ready", changed_by=changed_by)
    return agent


def end_wrap_up_if_over(*, agent_id: int) -> bool:
    """The queue's wrap-up limit ran out: the agent is available again."""
    with transaction.atomic():
        agent = (
            Agent.objects.select_for_update(skip_locked=True)
            .filter(id=agent_id, status=AgentStatus.WRAP_UP)
            .first()
        )
        if agent is None:
            return False
        deadline = selectors.wrap_up_deadline(agent)
        if deadline is None or deadline > timezone.now():
            return False
        return set_status(agent=agent, status=AgentStatus.AVAILABLE, reason="wrap_up_limit")
