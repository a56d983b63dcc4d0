from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Exists, F, OuterRef, Q, QuerySet, Subquery
from django.utils import timezone

from customers.selectors import caller_context
from routing.call_states import TALKING_STATES, CallState
from routing.models import Agent, AgentStatus, Call, Offer, OfferState, RoutingDecision

# The reasons after which a call no longer waits for its last agent but goes to the queue.
FALLBACK_REASONS = frozenset(
    {
        "last_agent_unavailable",
        "last_agent_declined",
        "last_agent_wait_expired",
        "offer_timed_out",
        "offer_declined",
    }
)

# The reasons after which a call simply waits; any other latest decision means work is due.
WAITING_REASONS = frozenset({"no_agent_waiting", "last_agent_busy_waited"})


def agent_id_for_user(user: Any) -> int | None:
    if user is None or not user.is_authenticated:
        return None
    return Agent.objects.filter(user=user).values_list("id", flat=True).first()


def agent_in_wrap_up(agent_id: int) -> bool:
    return Agent.objects.filter(id=agent_id, status=AgentStatus.WRAP_UP).exists()


def open_offers() -> QuerySet[Offer]:
    return Offer.objects.filter(state=OfferState.OFFERED)


def agents_without_open_offer() -> QuerySet[Agent]:
    return Agent.objects.exclude(Exists(open_offers().filter(agent=OuterRef("pk"))))


def last_agent_id(*, customer_id: int | None, lookback_days: int, now: datetime) -> int | None:
    """The agent of the customer's most recent connected call: one indexed row, whatever the
    history (index `call_customer_latest`)."""
    if customer_id is None:
        return None
    return (
        Call.objects.filter(
            customer_id=customer_id,
            connected_at__isnull=False,
            connected_at__gte=now - timedelta(days=lookback_days),
            agent__isnull=False,
        )
        .order_by("-connected_at")
        .values_list("agent_id", flat=True)
        .first()
    )


def agent_for_update_with_standing(*, agent_id: int, queue_id: int) -> Agent | None:
    """The agent, locked (None when another router holds them), with `serves_queue` and
    `ringing` (an open offer) read in the same query."""
    return (
        Agent.objects.select_for_update(skip_locked=True, of=("self",))
        .annotate(
            serves_queue=Exists(
                Agent.queues.through.objects.filter(agent_id=OuterRef("pk"), queue_id=queue_id)
            ),
            ringing=Exists(open_offers().filter(agent=OuterRef("pk"))),
        )
        .filter(id=agent_id)
        .first()
    )


def longest_idle_agent_for_update(*, queue_id: int, excluded_agent_ids: list[int]) -> Agent | None:
    """The available agent of the queue idle longest, locked; agents another router holds are
    skipped rather than waited for."""
    return (
        agents_without_open_offer()
        .filter(status=AgentStatus.AVAILABLE, queues=queue_id)
        .exclude(id__in=excluded_agent_ids)
        .order_by("status_changed_at", "id")
        .select_for_update(skip_locked=True, of=("self",))
        .first()
    )


def agents_refused_call(call_id: int) -> list[int]:
    """Agents who declined or let ring out an offer of this call: not offered it again."""
    return list(
        Offer.objects.filter(
            call_id=call_id, state__in=[OfferState.DECLINED, OfferState.TIMED_OUT]
        ).values_list("agent_id", flat=True)
    )


def call_fell_back_to_queue(call_id: int) -> bool:
    return RoutingDecision.objects.filter(call_id=call_id, reason__in=FALLBACK_REASONS).exists()


def waiting_calls() -> QuerySet[Call]:
    """Calls in a queue with nobody ringing for them, first arrival first."""
    return Call.objects.filter(state=CallState.QUEUED).order_by("queued_at", "id")


@dataclass(frozen=True)
class WaitingCall:
    id: int
    queue_id: int | None
    last_agent_id: int | None
    last_agent_wait_until: datetime | None
    latest_reason: str | None
    since: datetime | None

    @property
    def owed_a_decision(self) -> bool:
        """The router has not decided yet, or something happened since it left the call
        waiting (an offer declined or rang out): `route_call` has work to do."""
        return self.latest_reason not in WAITING_REASONS


def waiting_calls_with_latest_decision() -> list[WaitingCall]:
    """Every queued call, with the router's latest word on it and since when: one query."""
    latest = RoutingDecision.objects.filter(call=OuterRef("pk")).order_by("-id")
    rows = (
        waiting_calls()
        .annotate(
            latest_reason=Subquery(latest.values("reason")[:1]),
            latest_at=Subquery(latest.values("decided_at")[:1]),
        )
        .values_list(
            "id",
            "queue_id",
            "last_agent_id",
            "last_agent_wait_until",
            "latest_reason",
            "latest_at",
            "queued_at",
        )
    )
    return [WaitingCall(*row[:5], since=row[5] or row[6]) for row in rows]


def waiting_call_for_agent_for_update(*, agent: Agent, now: datetime) -> tuple[Call | None, bool]:
    """The waiting call an agent who just freed up should be offered, locked: first a caller
    whose last agent they are, then the longest-waiting caller of their queues that is not held
    for someone else. Returns (call, is_their_caller)."""
    queue_ids = list(agent.queues.values_list("id", flat=True))
    if not queue_ids:
        return None, False
    refused = Offer.objects.filter(
        call=OuterRef("pk"),
        agent=agent,
        state__in=[OfferState.DECLINED, OfferState.TIMED_OUT],
    )
    # A call the router has not looked at yet first goes through the last-agent rule.
    routed_once = RoutingDecision.objects.filter(call=OuterRef("pk"))
    candidates = (
        waiting_calls().filter(Exists(routed_once), queue__in=queue_ids).exclude(Exists(refused))
    )
    own = (
        candidates.filter(last_agent=agent)
        .select_for_update(skip_locked=True, of=("self",))
        .first()
    )
    if own is not None:
        return own, True
    other = (
        candidates.filter(Q(last_agent_wait_until__isnull=True) | Q(last_agent_wait_until__lte=now))
        .select_for_update(skip_locked=True, of=("self",))
        .first()
    )
    return other, False


def customer_ids_on_card(call: Call) -> list[int]:
    """The customer the call is from, or while nobody has said who is calling, every customer
    sharing the number."""
    if call.customer_id is not None:
        return [call.customer_id]
    return list(call.candidates.values_list("id", flat=True))


def caller_for_call(
    call: Call, *, agent_id: int | None, customer_ids: list[int] | None = None
) -> dict[str, Any]:
    return caller_context(
        from_e164=call.from_e164 or call.from_number,
        customer_ids=customer_ids_on_card(call) if customer_ids is None else customer_ids,
        agent_id=agent_id,
        identity_verified=call.identity_verified,
    )


def offer_message(offer: Offer, *, reason: str, caller: dict[str, Any]) -> dict[str, Any]:
    call = offer.call
    queue = call.queue
    return {
        "type": "offer",
        "offer_id": offer.id,
        "call_id": call.telephony_call_id,
        "queue": {"slug": queue.slug, "name": queue.name} if queue else None,
        "offered_at": offer.offered_at.isoformat(),
        "expires_at": offer.expires_at.isoformat(),
        "timeout_seconds": queue.offer_timeout_seconds if queue else None,
        "reason": reason,
        "caller": caller,
    }


def call_message(call: Call, *, caller: dict[str, Any], state: str | None = None) -> dict[str, Any]:
    return {
        "type": "call",
        "call_id": call.telephony_call_id,
        "state": state or call.state,
        "connected_at": call.connected_at.isoformat() if call.connected_at else None,
        "customer_id": call.customer_id,
        "caller": caller,
    }


def status_message(agent: Agent, *, reason: str) -> dict[str, Any]:
    return {
        "type": "status",
        "status": agent.status,
        "status_changed_at": agent.status_changed_at.isoformat(),
        "reason": reason,
    }


def agent_current_call(agent: Agent) -> Call | None:
    """The call on the agent's screen: the one they talk on (or accepted), else during wrap-up
    the one just ended."""
    if agent.status == AgentStatus.BUSY:
        return (
            Call.objects.filter(
                agent=agent, state__in=[*TALKING_STATES, CallState.OFFERED, CallState.QUEUED]
            )
            .select_related("queue")
            .order_by("-created_at")
            .first()
        )
    if agent.status == AgentStatus.WRAP_UP:
        return (
            Call.objects.filter(agent=agent)
            .select_related("queue")
            .order_by(F("ended_at").desc(nulls_last=True), "-id")
            .first()
        )
    return None


DEFAULT_WRAP_UP_SECONDS = 120


def _wrap_up_seconds_of_last_call() -> Subquery:
    return Subquery(
        Call.objects.filter(agent=OuterRef("pk"))
        .order_by(F("ended_at").desc(nulls_last=True), "-id")
        .values("queue__wrap_up_seconds")[:1]
    )


def wrap_up_deadline(agent: Agent) -> datetime | None:
    """Wrap-up lasts at most the wrap-up limit of the queue of the agent's last call."""
    if agent.status != AgentStatus.WRAP_UP:
        return None
    seconds = (
        Agent.objects.filter(id=agent.id)
        .annotate(limit=_wrap_up_seconds_of_last_call())
        .values_list("limit", flat=True)
        .first()
    )
    return agent.status_changed_at + timedelta(seconds=seconds or DEFAULT_WRAP_UP_SECONDS)


def agents_with_wrap_up_over(*, now: datetime) -> list[int]:
    rows = (
        Agent.objects.filter(status=AgentStatus.WRAP_UP)
        .annotate(limit=_wrap_up_seconds_of_last_call())
        .values_list("id", "status_changed_at", "limit")
    )
    return [
        agent_id
        for agent_id, since, limit in rows
        if since + timedelta(seconds=limit or DEFAULT_WRAP_UP_SECONDS) <= now
    ]


def agent_snapshot(agent_id: int) -> dict[str, Any]:
    """The first message on an agent's socket: everything the screen needs to draw itself,
    including the offer ringing now and the current call, so a reconnect heals."""
    agent = Agent.objects.prefetch_related("queues").get(id=agent_id)
    offer = open_offers().filter(agent=agent).select_related("call__queue", "decision").first()
    offer_payload = None
    if offer is not None:
        reason = offer.decision.reason if hasattr(offer, "decision") else ""
        offer_payload = offer_message(
            offer, reason=reason, caller=caller_for_call(offer.call, agent_id=agent.id)
        )
    call = agent_current_call(agent)
    call_payload = None
    if call is not None:
        state = CallState.WRAP_UP if agent.status == AgentStatus.WRAP_UP else None
        call_payload = call_message(
            call, caller=caller_for_call(call, agent_id=agent.id), state=state
        )
    return {
        "type": "state",
        "agent": {
            "id": agent.id,
            "display_name": agent.display_name,
            "status": agent.status,
            "status_changed_at": agent.status_changed_at.isoformat(),
            "queues": [queue.slug for queue in agent.queues.all()],
        },
        "offer": offer_payload,
        "call": call_payload,
    }


def call_detail(call: Call) -> dict[str, Any]:
    """`GET /api/calls/<call_id>/`: the call, its ringing offer and every routing decision."""
    offer = open_offers().filter(call=call).select_related("agent").first()
    decisions = call.decisions.select_related("agent")
    return {
        "call_id": call.telephony_call_id,
        "state": call.state,
        "from": call.from_e164 or call.from_number,
        "queue": call.queue.slug if call.queue else None,
        "customer_id": call.customer_id,
        "agent": _agent_ref(call.agent),
        "last_agent": _agent_ref(call.last_agent),
        "last_agent_wait_until": _iso(call.last_agent_wait_until),
        "queued_at": _iso(call.queued_at),
        "connected_at": _iso(call.connected_at),
        "ended_at": _iso(call.ended_at),
        "current_offer": None
        if offer is None
        else {
            "id": offer.id,
            "agent": _agent_ref(offer.agent),
            "offered_at": _iso(offer.offered_at),
            "expires_at": _iso(offer.expires_at),
        },
        "decisions": [
            {
                "id": decision.id,
                "reason": decision.reason,
                "agent": _agent_ref(decision.agent),
                "offer_id": decision.offer_id,
                "decided_at": _iso(decision.decided_at),
                "caller_waited_ms": decision.caller_waited_ms,
                "took_ms": decision.took_ms,
                "detail": decision.detail,
            }
            for decision in decisions
        ],
    }


def _agent_ref(agent: Agent | None) -> dict[str, Any] | None:
    return None if agent is None else {"id": agent.id, "display_name": agent.display_name}


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def now() -> datetime:
    return timezone.now()
