"""Reads of the router: agents, offers, waiting calls, a caller's last agent, deadlines."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models import (
    DateTimeField,
    Exists,
    ExpressionWrapper,
    F,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
)
from django.db.models.functions import Coalesce, NullIf

from customers.models import CallNote, Customer
from infrastructure.database import rows
from routing import roles
from routing.models import (
    DEFAULT_WRAP_UP_SECONDS,
    FALLBACK_REASONS,
    WAITING_REASONS,
    Agent,
    Call,
    Callback,
    CallbackState,
    DecisionReason,
    Offer,
    Queue,
    RoutingDecision,
)
from routing.states import (
    REFUSED_OFFER_STATES,
    TALKING_STATES,
    WAITING_STATES,
    AgentStatus,
    CallState,
    OfferState,
    status_label,
)

User = get_user_model()


def agent_id_for_user(user: Any) -> int | None:
    """The id of the person's agent, while they take calls (`roles.takes_calls`)."""
    agent = agent_for_user(user, fields=("id",))
    return None if agent is None else agent.id


def agent_for_user(user: Any, *, fields: Sequence[str] = ()) -> Agent | None:
    """The person's agent (only `fields`, when given), while they take calls
    (`roles.takes_calls`): nobody else acts or sees a caller as an agent."""
    if user is None or not user.is_authenticated:
        return None
    agents = Agent.objects.filter(roles.takes_calls(), user_id=user.pk)
    return (agents.only(*fields) if fields else agents).first()


def open_offers() -> QuerySet[Offer]:
    return Offer.objects.filter(state=OfferState.OFFERED)


@dataclass(frozen=True)
class OtherCalls:
    """What an agent just connected to a call still had of other calls."""

    # Offers ringing for them, as (offer id, call id), latest first.
    ringing: list[tuple[int, int]]
    # Calls they accepted that are not yet connected (`calls_accepted_by`), by id.
    accepted: list[int]


def other_calls_of(agent_id: int, *, besides: int) -> OtherCalls:
    """The agent's offers ringing and calls accepted, other than the call `besides`: read on
    every answered call, so one statement, written as SQL and prepared (see
    infrastructure.database.rows)."""
    with rows.prepared_cursor() as cursor:
        cursor.execute(
            _OTHER_CALLS_OF_SQL,
            {
                "agent": agent_id,
                "offer_offered": OfferState.OFFERED,
                "call_offered": CallState.OFFERED,
                "besides": besides,
            },
        )
        found = cursor.fetchall()
    return OtherCalls(
        ringing=[(offer_id, call_id) for offer_id, call_id in found if offer_id is not None],
        accepted=[call_id for offer_id, call_id in found if offer_id is None],
    )


_OTHER_CALLS_OF_SQL = f"""
    SELECT offer_id, call_id FROM (
        SELECT id AS offer_id, call_id, offered_at AS since FROM {Offer._meta.db_table}
        WHERE agent_id = %(agent)s AND state = %(offer_offered)s
        UNION ALL
        SELECT NULL, id, NULL FROM {Call._meta.db_table}
        WHERE agent_id = %(agent)s AND state = %(call_offered)s AND id <> %(besides)s
    ) other
    ORDER BY since DESC NULLS LAST, offer_id DESC NULLS LAST, call_id
"""


def anything_to_sweep(*, now: datetime) -> bool:
    """Whether the router's sweeper could have work: an offer ringing, a call waiting (in its
    queue, ringing, or accepted and not yet answered) or an agent whose wrap-up ran over. Every
    deadline and lost hand-off the sweep acts on belongs to one of these (or is a call back due
    to be tried again); a new one must be added here. A wrap-up still within its limit is not
    work: agents wrapping up after the last call of a rush would otherwise have the sweeper run
    every second for minutes. On a
    quiet line a sweep is this one query."""
    wrap_ups, wrap_up_params = wrap_ups_over(now=now).values("id").query.sql_with_params()
    sql = f"""
        SELECT EXISTS (SELECT 1 FROM {Offer._meta.db_table} WHERE state = %s)
            OR EXISTS (SELECT 1 FROM {Call._meta.db_table} WHERE state = ANY(%s))
            OR EXISTS ({wrap_ups})
            OR EXISTS (SELECT 1 FROM {Callback._meta.db_table}
                       WHERE next_attempt_at <= %s AND state = %s)
    """
    with connection.cursor() as cursor:
        cursor.execute(
            sql,
            [
                OfferState.OFFERED,
                sorted(WAITING_STATES),
                *wrap_up_params,
                now,
                CallbackState.WAITING,
            ],
        )
        return cursor.fetchone()[0]


def offerable_agents() -> QuerySet[Agent]:
    """Agents a call could be offered to, whatever their status: they take calls
    (`roles.takes_calls`) and no offer rings for them."""
    return Agent.objects.filter(roles.takes_calls()).exclude(
        Exists(open_offers().filter(agent=OuterRef("pk")))
    )


def calls_in_hand(agent_id: int) -> QuerySet[Call]:
    """The calls an agent is on: talking (connected, held, transferred to them), or accepted and
    not yet answered (a waiting call has an agent only once its offer was accepted). An agent
    with one is never offered, and never accepts, another."""
    return Call.objects.filter(agent_id=agent_id, state__in=TALKING_STATES | WAITING_STATES)


def calls_accepted_by(agent_id: int) -> QuerySet[Call]:
    """Calls the agent accepted that are not yet connected (offered to them and taken: the
    telephony system is connecting them)."""
    return Call.objects.filter(agent_id=agent_id, state=CallState.OFFERED)


def calls_accepted_by_agents_on_another_call() -> QuerySet:
    """The ids, in order, of calls accepted and not yet connected whose agent the telephony
    system has since connected to another call: they are no longer that agent's
    (routing.offers `let_go_of_other_calls`)."""
    talking = Call.objects.filter(agent_id=OuterRef("agent_id"), state__in=TALKING_STATES)
    return (
        Call.objects.filter(state=CallState.OFFERED, agent__isnull=False)
        .filter(Exists(talking))
        .order_by("id")
        .values_list("id", flat=True)
    )


def calls_accepted_not_answered(*, accepted_before: datetime) -> QuerySet[Call]:
    """Calls whose agent accepted them before `accepted_before`, still not answered: the
    telephony system was told to connect them (or should have been)."""
    accepted = Offer.objects.filter(
        call=OuterRef("pk"),
        agent=OuterRef("agent"),
        state=OfferState.ACCEPTED,
        responded_at__lt=accepted_before,
    )
    return Call.objects.filter(state__in=WAITING_STATES, agent__isnull=False).filter(
        Exists(accepted)
    )


def last_agent(
    *, customer_id: int | None, queue_id: int | None, now: datetime
) -> dict[str, Any] | None:
    """The caller's last agent: the agent of their most recent connected call within the look-back
    of `queue_id` (no queue: however long ago), as `id`, `display_name` and `last_spoke_at`,
    with what that call left to do (`follow_up`, or None).

    The router offers the call to this agent and the caller card names the same one. One
    statement reading one indexed row (`call_customer_latest`), whatever the history; written
    once as SQL because both run on every offer (the ORM spent longer building it than
    PostgreSQL spent answering)."""
    if customer_id is None:
        return None
    sql, params = _LAST_AGENT_SQL, [customer_id]
    if queue_id is not None:
        sql, params = _LAST_AGENT_IN_LOOKBACK_SQL, [customer_id, now, queue_id]
    with rows.prepared_cursor() as cursor:
        cursor.execute(sql, params)
        return _last_agent(cursor.fetchone())


def _last_agent_sql(*, customer: str, since: str) -> str:
    """`last_agent`'s statement: the caller `customer` (an expression), their calls connected
    since `since` (an expression; empty: however long ago), the latest."""
    lookback = f"AND prior.connected_at >= {since}" if since else ""
    return f"""
        SELECT prior.agent_id, agent.display_name, prior.connected_at, prior.wrap_up_label,
            prior.call_back_promised,
            EXISTS (SELECT 1 FROM "{CallNote._meta.db_table}" note
                    WHERE note.call_id = prior.id AND note.open_matter) AS open_matter
        FROM "{Call._meta.db_table}" prior
        JOIN "{Agent._meta.db_table}" agent ON agent.id = prior.agent_id
        WHERE prior.customer_id = {customer} AND prior.connected_at IS NOT NULL {lookback}
        ORDER BY prior.connected_at DESC
        LIMIT 1
    """


_LOOKBACK_START = "%s::timestamptz - interval '1 day' * {days}"
_LAST_AGENT_SQL = _last_agent_sql(customer="%s", since="")
_LAST_AGENT_IN_LOOKBACK_SQL = _last_agent_sql(
    customer="%s",
    since=_LOOKBACK_START.format(
        days=f'(SELECT last_agent_lookback_days FROM "{Queue._meta.db_table}" WHERE id = %s)'
    ),
)
# The same, inside the router's locking read of a call: its caller, its queue's look-back.
_LAST_AGENT_OF_THE_CALLER_SQL = _last_agent_sql(
    customer="call.customer_id",
    since=_LOOKBACK_START.format(days="queue.last_agent_lookback_days"),
)


def call_to_route_for_update(
    call_id: int, *, now: datetime
) -> tuple[Call | None, str | None, dict[str, Any] | None]:
    """The call, locked (waiting for another transaction that holds it), with its queue and
    customer; the reason of the router's latest decision on it (None: it never decided); and
    the caller's last agent within the queue's look-back at `now` (as `last_agent` gives it).
    One statement, written as SQL: it opens every routing (see infrastructure.database.rows)."""
    with rows.prepared_cursor() as cursor:
        cursor.execute(_CALL_TO_ROUTE_SQL, [now, call_id])
        row = cursor.fetchone()
    if row is None:
        return None, None, None
    (call_values, queue_values, customer_values), (latest_reason, *last) = rows.split(
        row, Call, Queue, Customer
    )
    call = rows.instance(Call, call_values)
    call.queue = None if call.queue_id is None else rows.instance(Queue, queue_values)
    call.customer = None if call.customer_id is None else rows.instance(Customer, customer_values)
    return call, latest_reason, _last_agent(last)


def _last_agent(values: Sequence[Any] | None) -> dict[str, Any] | None:
    if values is None or values[0] is None:
        return None
    agent_id, display_name, last_spoke_at, wrap_up_label, call_back_promised, open_matter = values
    return {
        "id": agent_id,
        "display_name": display_name,
        "last_spoke_at": last_spoke_at.isoformat(),
        "follow_up": follow_up(
            wrap_up_label=wrap_up_label,
            call_back_promised=call_back_promised,
            open_matter=open_matter,
        ),
    }


def follow_up(
    *, wrap_up_label: str, call_back_promised: bool, open_matter: bool
) -> dict[str, Any] | None:
    """What the caller's last call left to do, if anything ("the next call knows"): a call back
    promised (its wrap-up code says so) or a matter left open (its note says so)."""
    if not (call_back_promised or open_matter):
        return None
    what = "Call back promised" if call_back_promised else "Open matter"
    label = wrap_up_label or None
    return {
        "call_back_promised": call_back_promised,
        "open_matter": open_matter,
        "wrap_up_code": label,
        "text": what if label is None or label.lower() == what.lower() else f"{what} — {label}",
    }


_CALL_TO_ROUTE_SQL = f"""
    SELECT {rows.columns(Call, "call")}, {rows.columns(Queue, "queue")},
        {rows.columns(Customer, "customer")},
        (SELECT latest.reason FROM "{RoutingDecision._meta.db_table}" latest
         WHERE latest.call_id = call.id ORDER BY latest.id DESC LIMIT 1),
        last.agent_id, last.display_name, last.connected_at, last.wrap_up_label,
        last.call_back_promised, last.open_matter
    FROM "{Call._meta.db_table}" call
    LEFT JOIN "{Queue._meta.db_table}" queue ON queue.id = call.queue_id
    LEFT JOIN "{Customer._meta.db_table}" customer ON customer.id = call.customer_id
    LEFT JOIN LATERAL ({_LAST_AGENT_OF_THE_CALLER_SQL}) last ON true
    WHERE call.id = %s
    FOR UPDATE OF call
"""


@dataclass(frozen=True)
class AgentStanding:
    """Where an agent stands for a caller of one queue (routing.policy.last_agent_step)."""

    status: str
    serves_queue: bool
    # An offer of another call rings for them.
    ringing: bool
    # They hold the agent role (`roles.takes_calls`): nobody else is offered a call.
    takes_calls: bool

    @property
    def free(self) -> bool:
        return self.status == AgentStatus.AVAILABLE and not self.ringing


def agent_for_update_with_standing(
    *, agent_id: int, queue_id: int
) -> tuple[Agent, AgentStanding] | None:
    """The agent, locked (None when another router holds them), with their user, and where they
    stand for a caller of `queue_id`, read in the same query."""
    return _agent_with_standing(_AGENT_WITH_STANDING_FOR_UPDATE_SQL, agent_id, queue_id)


def agent_with_standing(*, agent_id: int, queue_id: int) -> tuple[Agent, AgentStanding] | None:
    """`agent_for_update_with_standing` without the lock, for a question asked from outside
    (a PBX's route hint)."""
    return _agent_with_standing(_AGENT_WITH_STANDING_SQL, agent_id, queue_id)


def _agent_with_standing(
    sql: str, agent_id: int, queue_id: int
) -> tuple[Agent, AgentStanding] | None:
    with rows.prepared_cursor() as cursor:
        cursor.execute(sql, [queue_id, OfferState.OFFERED, agent_id])
        row = cursor.fetchone()
    if row is None:
        return None
    agent = _agent_with_user(row)
    serves_queue, ringing, takes_calls = row[-3:]
    return agent, AgentStanding(agent.status, serves_queue, ringing, takes_calls)


_AGENT_WITH_USER_COLUMNS = f"{rows.columns(Agent, 'agent')}, {rows.columns(User, 'person')}"
_AGENT_WITH_USER_FROM = f"""
    FROM "{Agent._meta.db_table}" agent
    JOIN "{User._meta.db_table}" person ON person.id = agent.user_id
"""
_IN_QUEUE = f"""EXISTS (SELECT 1 FROM "{Agent.queues.through._meta.db_table}" served
    WHERE served.agent_id = agent.id AND served.queue_id = %s)"""
_RINGING = f"""EXISTS (SELECT 1 FROM "{Offer._meta.db_table}" ringing
    WHERE ringing.agent_id = agent.id AND ringing.state = %s)"""
_TAKES_CALLS = roles.takes_calls_sql("person")
_AGENT_WITH_STANDING_SQL = f"""
    SELECT {_AGENT_WITH_USER_COLUMNS}, {_IN_QUEUE}, {_RINGING}, {_TAKES_CALLS}
    {_AGENT_WITH_USER_FROM}
    WHERE agent.id = %s
"""
_AGENT_WITH_STANDING_FOR_UPDATE_SQL = _AGENT_WITH_STANDING_SQL + "FOR UPDATE OF agent SKIP LOCKED"
# The router's queue step, in one place: who may be offered a queue's call, best first (the
# available agent of the queue idle longest, with no offer ringing, who takes calls). Parameters:
# status, queue id, offer state, excluded agent ids.
_QUEUE_AGENTS_IN_ORDER = f"""
    {_AGENT_WITH_USER_FROM}
    WHERE agent.status = %s AND {_IN_QUEUE} AND NOT {_RINGING} AND {_TAKES_CALLS}
        AND NOT (agent.id = ANY(%s::bigint[]))
    ORDER BY agent.status_changed_at, agent.id
"""
_LONGEST_IDLE_SQL = f"""
    SELECT {_AGENT_WITH_USER_COLUMNS}
    {_QUEUE_AGENTS_IN_ORDER}
    LIMIT 1
    FOR UPDATE OF agent SKIP LOCKED
"""
_QUEUE_IDENTITIES_SQL = f"""
    SELECT agent.telephony_identity
    {_QUEUE_AGENTS_IN_ORDER}
    LIMIT %s
"""


def agents_for_update(agent_ids: list[int]) -> dict[int, Agent]:
    """The agents, locked in id order (waiting for another transaction that holds one), with
    their user: the answering agent and any who accepted the call elsewhere, in one statement."""
    with rows.prepared_cursor() as cursor:
        cursor.execute(_AGENTS_FOR_UPDATE_SQL, [sorted(set(agent_ids))])
        return {agent.id: agent for agent in map(_agent_with_user, cursor.fetchall())}


_AGENTS_FOR_UPDATE_SQL = f"""
    SELECT {_AGENT_WITH_USER_COLUMNS}
    {_AGENT_WITH_USER_FROM}
    WHERE agent.id = ANY(%s::bigint[])
    ORDER BY agent.id
    FOR UPDATE OF agent
"""


def _agent_with_user(row) -> Agent:
    (agent_values, user_values), _rest = rows.split(row, Agent, User)
    agent = rows.instance(Agent, agent_values)
    agent.user = rows.instance(User, user_values)
    return agent


def longest_idle_agent_for_update(*, queue_id: int, excluded_agent_ids: list[int]) -> Agent | None:
    """The available agent of the queue idle longest, with no offer ringing, who takes calls
    (`roles.takes_calls`), locked, with their user; agents another router holds are skipped
    rather than waited for. Written as SQL: it
    runs on every offer (see infrastructure.database.rows)."""
    with rows.prepared_cursor() as cursor:
        cursor.execute(
            _LONGEST_IDLE_SQL,
            [AgentStatus.AVAILABLE, queue_id, OfferState.OFFERED, list(excluded_agent_ids)],
        )
        row = cursor.fetchone()
    return None if row is None else _agent_with_user(row)


def queue_agent_identities(
    *, queue_id: int, excluded_agent_ids: list[int], limit: int
) -> list[str]:
    """The telephony identities of the agents the router's queue step would offer a call of the
    queue to, in its order (`longest_idle_agent_for_update`'s rule, unlocked): for a PBX that
    rings them itself (the route hint's `then`)."""
    with rows.prepared_cursor() as cursor:
        cursor.execute(
            _QUEUE_IDENTITIES_SQL,
            [AgentStatus.AVAILABLE, queue_id, OfferState.OFFERED, list(excluded_agent_ids), limit],
        )
        return [identity for (identity,) in cursor.fetchall()]


# Decisions that applied a caller's hold rule to their busy last agent.
HOLD_DECISION_REASONS = frozenset(
    {DecisionReason.LAST_AGENT_BUSY_WAITED, DecisionReason.LAST_AGENT_BUSY_NOT_HELD}
)


@dataclass(frozen=True)
class HoldStory:
    """The latest decision that held (or did not hold) a call for its busy last agent, and how
    long the caller had waited when the next decision ended that hold."""

    reason: str
    last_agent_id: int | None
    detail: dict[str, Any]
    waited_ms: int


def hold_story(call_id: int) -> HoldStory | None:
    """One query over the call's few decisions."""
    decisions = list(
        RoutingDecision.objects.filter(call_id=call_id)
        .order_by("id")
        .values_list("reason", "agent_id", "detail", "caller_waited_ms")
    )
    held = [index for index, row in enumerate(decisions) if row[0] in HOLD_DECISION_REASONS]
    if not held:
        return None
    reason, agent_id, detail, waited_ms = decisions[held[-1]]
    if held[-1] + 1 < len(decisions):
        waited_ms = decisions[held[-1] + 1][3]
    return HoldStory(reason, agent_id, detail or {}, waited_ms or 0)


def refused_offers() -> QuerySet[Offer]:
    """Offers the agent declined or let ring out: that call is not offered to them again."""
    return Offer.objects.filter(state__in=REFUSED_OFFER_STATES)


def agents_refused_call(call_id: int) -> list[int]:
    return list(refused_offers().filter(call_id=call_id).values_list("agent_id", flat=True))


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


def calls_held_for(agent_id: int, *, now: datetime) -> QuerySet[Call]:
    """Callers held for their busy last agent `agent_id` now, with their customer."""
    return (
        waiting_calls()
        .filter(last_agent_id=agent_id, last_agent_wait_until__gt=now)
        .select_related("customer")
    )


def waiting_call_for_agent_for_update(*, agent: Agent, now: datetime) -> tuple[Call | None, bool]:
    """The waiting call an agent who just freed up should be offered, locked: first a caller
    whose last agent they are, then the longest-waiting caller of their queues that is not held
    for someone else. Returns (call, is_their_caller)."""
    queue_ids = list(agent.queues.values_list("id", flat=True))
    if not queue_ids:
        return None, False
    refused = refused_offers().filter(call=OuterRef("pk"), agent=agent)
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


def agent_current_call(agent: Agent) -> Call | None:
    """The call on the agent's screen: the one they talk on (or accepted), else during wrap-up
    the one they wrap up (`Agent.wrap_up_call`)."""
    if agent.status == AgentStatus.BUSY:
        theirs = (
            Call.objects.filter(
                agent=agent, state__in=[*TALKING_STATES, CallState.OFFERED, CallState.QUEUED]
            )
            .select_related("queue")
            .order_by("-created_at")
            .first()
        )
        if theirs is not None:
            return theirs
        # A hand-off they accepted, while the phone system moves the caller (routing.transfers).
        handed_to_them = Offer.objects.filter(
            agent=agent, state=OfferState.ACCEPTED, handoff_from_id=OuterRef("agent_id")
        )
        return (
            Call.objects.filter(state__in=TALKING_STATES)
            .filter(Exists(handed_to_them.filter(call=OuterRef("pk"))))
            .select_related("queue")
            .order_by("-created_at")
            .first()
        )
    if agent.status == AgentStatus.WRAP_UP and agent.wrap_up_call_id is not None:
        return Call.objects.select_related("queue").filter(id=agent.wrap_up_call_id).first()
    return None


def wrap_up_seconds_of(call: Call) -> int:
    """How long a wrap-up after `call` lasts at most: its queue's limit."""
    seconds = None
    if call.queue_id is not None:
        seconds = (
            Queue.objects.filter(id=call.queue_id).values_list("wrap_up_seconds", flat=True).first()
        )
    return seconds or DEFAULT_WRAP_UP_SECONDS


def agents_with_wrap_up_over(*, now: datetime) -> list[int]:
    return list(wrap_ups_over(now=now).values_list("id", flat=True))


def wrap_ups_over(*, now: datetime) -> QuerySet[Agent]:
    """Agents in wrap-up past its limit: the `wrap_up_seconds` of the queue of the call they
    wrap up (`Agent.wrap_up_call`), the default where it has none (or 0)."""
    limit = Coalesce(NullIf(F("wrap_up_call__queue__wrap_up_seconds"), 0), DEFAULT_WRAP_UP_SECONDS)
    over_since = ExpressionWrapper(
        Value(now) - limit * Value(timedelta(seconds=1)), output_field=DateTimeField()
    )
    return (
        Agent.objects.filter(status=AgentStatus.WRAP_UP)
        .alias(over_since=over_since)
        .filter(status_changed_at__lte=F("over_since"))
    )


def transfer_colleagues(*, agent_id: int) -> list[dict[str, Any]]:
    """Whom the agent could hand their call to (routing.transfers): everyone else who takes
    calls and is signed in, the free ones first (available, nothing ringing, no call in hand),
    with their status and queues. Two queries, however many colleagues."""
    colleagues = (
        Agent.objects.filter(roles.takes_calls())
        .exclude(id=agent_id)
        .exclude(status=AgentStatus.OFFLINE)
        .annotate(
            ringing=Exists(open_offers().filter(agent=OuterRef("pk"))),
            in_hand=Exists(
                Call.objects.filter(agent=OuterRef("pk"), state__in=TALKING_STATES | WAITING_STATES)
            ),
        )
        .prefetch_related("queues")
        .order_by("display_name", "id")
    )
    found = [
        {
            "id": colleague.id,
            "display_name": colleague.display_name,
            "status": colleague.status,
            "status_label": status_label(colleague.status, colleague.not_ready_reason),
            "queues": [
                {"slug": queue.slug, "name": queue.name} for queue in colleague.queues.all()
            ],
            "free": colleague.status == AgentStatus.AVAILABLE
            and not colleague.ringing
            and not colleague.in_hand,
        }
        for colleague in colleagues
    ]
    return sorted(found, key=lambda colleague: not colleague["free"])


def handoffs_accepted_not_done(*, accepted_before: datetime) -> QuerySet[Offer]:
    """Hand-offs (routing.transfers) accepted before `accepted_before` that the phone system has
    not carried out: the call still talks with the agent who handed it over."""
    return Offer.objects.filter(
        state=OfferState.ACCEPTED,
        handoff_from__isnull=False,
        responded_at__lt=accepted_before,
        call__state__in=TALKING_STATES,
        call__agent_id=F("handoff_from_id"),
    )
