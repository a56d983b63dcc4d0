"""A soak of ordinary and disorderly call flows on real processes, at a size that fits the suite.

4 Celery worker processes (with beat) apply the events and route 300 calls that arrive through
the signed webhook, posted to the application as uvicorn serves it, as real phone systems send
them: stamped in whole seconds, each delivered up to 2 s late and so out of order, 30% delivered
twice, 5% of hang-ups never sent. Agents accept, decline and ignore offers over the REST API and
look at their caller's record; the phone system answers each pushed `call.connect` (not while
the agent's line is busy), transfers some calls to a free agent while Rapport may be offering
them another, and hangs up; callers give up while they wait. Mid-run the Redis the workers use
is stopped and started again, one worker process is killed with SIGKILL, and two agents are
taken out of the agent group and later put back.

At the end: every call is in a final state (a lost hang-up ended by the silent-call sweep),
every agent's status matches their calls, nobody was ever on two calls, no call was told to
connect two different agents, nobody was offered a call while out of the agent group, no agent
can read a customer whose call is no longer theirs (through the API), and every screen-pop and
every look at a record has its audit row.
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import ThreadingHTTPServer
from itertools import count
from unittest import mock

import pytest
from channels.layers import channel_layers
from django.contrib.auth.models import Group
from django.contrib.postgres.aggregates import ArrayAgg
from django.db.models import Count
from django.test import Client

from customers.models import AccessReason, ContextAccess
from rapport.celery import app as celery_app
from routing.models import Agent, Call, DecisionReason, Offer, RoutingDecision
from routing.offers import CONNECTED_TO_ANOTHER_CALL
from routing.states import (
    FINAL_STATES,
    TALKING_STATES,
    WAITING_STATES,
    AgentStatus,
    CallState,
    OfferState,
)
from tests.support.dedicated_redis import DedicatedRedis
from tests.support.routing import FAST_PASSWORD_HASHERS, Workers, running_workers, wait_until
from tests.support.telephony import PhoneSystem, PhoneSystemControl, new_secret, signed_headers

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True), pytest.mark.timeout(420)]

CALLS = 300
AGENTS = 16
CUSTOMERS = 40
DUPLICATED = 0.30
# Each delivery is this many seconds late at most: events of one call overtake each other.
LATE_BY_UP_TO = 2.0
HANG_UPS_LOST = 0.05
# A connected call the phone system has said nothing of for this long is ended as lost.
SILENT_CALL_SECONDS = 15
WAITING_AT_MOST = 20
QUEUE_NUMBER = "+18005550100"
SECRET = new_secret()


@dataclass
class SimulatedCall:
    telephony_id: str
    patience_until: float
    connect_agent: str | None = None
    answered: bool = False
    transferred: bool = False
    ended: bool = False
    hang_up_at: float | None = None


@dataclass
class Soak:
    """The phone system and the agents' hands, driven from this one thread."""

    phone: PhoneSystem
    agents: list[Agent]
    clients_by_agent: dict[int, Client]
    rng: random.Random
    calls: dict[str, SimulatedCall] = field(default_factory=dict)
    # (when it is delivered, the body, its webhook id)
    pending: list[tuple[float, dict, str]] = field(default_factory=list)
    # Each look at a caller's record an agent made during their call: (user id, customer id).
    looks: list[tuple[int, int]] = field(default_factory=list)
    # Each customer an agent was offered: (agent id, customer id).
    offered_customers: set[tuple[int, int]] = field(default_factory=set)
    lost_hang_ups: set[str] = field(default_factory=set)
    # Connects the phone system holds until the agent's line is free.
    connects_waiting: list[dict] = field(default_factory=list)
    connects_seen: int = 0
    acted_on_offers: set[int] = field(default_factory=set)
    two_calls_seen: list[tuple[int, list]] = field(default_factory=list)
    # When each agent was first seen on the same two (or more) calls, while they still are.
    two_calls_since: dict[tuple[int, frozenset], float] = field(default_factory=dict)
    webhook_ids = count(1)
    tally: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def event(self, type_: str, call: SimulatedCall, **fields) -> None:
        body = {
            "type": type_,
            "call_id": call.telephony_id,
            # Whole seconds, as many phone systems stamp: events of one second tie.
            "occurred_at": datetime.now(tz=UTC).replace(microsecond=0).isoformat(),
            **fields,
        }
        webhook_id = f"msg_soak_{next(self.webhook_ids)}"
        self.pending.append((self.delivered_at(), body, webhook_id))
        self.tally[type_] += 1
        if self.rng.random() < DUPLICATED:
            self.pending.append((self.delivered_at(), body, webhook_id))
            self.tally["delivered twice"] += 1

    def delivered_at(self) -> float:
        return time.monotonic() + self.rng.uniform(0, LATE_BY_UP_TO)

    def deliver_some(self, *, everything: bool = False) -> None:
        """Post the pending events that are due (all of them: `everything`), in shuffled order;
        each carries when it happened."""
        now = time.monotonic()
        batch = [each for each in self.pending if everything or each[0] <= now]
        self.pending = [each for each in self.pending if not (everything or each[0] <= now)]
        self.rng.shuffle(batch)
        for _, body, webhook_id in batch:
            raw = json.dumps(body)
            # Through the application as uvicorn serves it; the worker processes apply.
            response = self.phone.send(raw, signed_headers(raw, webhook_id), work=False)
            assert response.status_code == 202, (response.status_code, response.content)

    def ring(self, number: int) -> None:
        # Some callers give up after a few seconds; the rest wait as long as it takes, so a call
        # whose connect instruction was lost never ends and the soak fails on it.
        impatient = self.rng.random() < 0.15
        call = SimulatedCall(
            telephony_id=f"SOAK-{number:04d}",
            patience_until=time.monotonic() + self.rng.uniform(1, 8) if impatient else float("inf"),
        )
        self.calls[call.telephony_id] = call
        # Half the callers are known customers (a screen-pop with customer data), half new.
        if self.rng.random() < 0.5:
            caller = customer_number(self.rng.randrange(CUSTOMERS))
        else:
            caller = f"+1212555{number:04d}"
        self.event("call.ringing", call, **{"from": caller, "to": QUEUE_NUMBER})

    def agents_act(self) -> None:
        """Each ringing offer: mostly accepted, sometimes declined, sometimes left to time out."""
        ringing = Offer.objects.filter(state=OfferState.OFFERED).exclude(
            id__in=self.acted_on_offers
        )
        for offer_id, agent_id, customer_id in ringing.values_list(
            "id", "agent_id", "call__customer_id"
        ):
            self.acted_on_offers.add(offer_id)
            if customer_id is not None:
                self.offered_customers.add((agent_id, customer_id))
            choice = self.rng.random()
            client = self.clients_by_agent[agent_id]
            if choice < 0.75:
                client.post(f"/api/offers/{offer_id}/accept/")
                self.tally["accepts"] += 1
            elif choice < 0.9:
                client.post(f"/api/offers/{offer_id}/decline/")
                self.tally["declines"] += 1
            else:
                self.tally["left to time out"] += 1
        # An agent on a call looks at the caller's record now and then.
        talking = Call.objects.filter(
            agent_id__in=self.clients_by_agent,
            state__in=list(TALKING_STATES),
            customer__isnull=False,
        ).values_list("agent_id", "agent__user_id", "customer_id")
        for agent_id, user_id, customer_id in talking:
            if self.rng.random() < 0.2:
                response = self.clients_by_agent[agent_id].get(f"/api/customers/{customer_id}/")
                if response.status_code == 200:
                    self.looks.append((user_id, customer_id))
                    self.tally["looks at a record"] += 1
        # Agents the router put on break (an offer they let time out) and agents in wrap-up
        # come back.
        for agent_id, status in Agent.objects.filter(id__in=self.clients_by_agent).values_list(
            "id", "status"
        ):
            client = self.clients_by_agent[agent_id]
            if status == AgentStatus.WRAP_UP and self.rng.random() < 0.5:
                client.post(f"/api/agents/{agent_id}/ready/")
            elif status == AgentStatus.BREAK and self.rng.random() < 0.3:
                client.patch(
                    f"/api/agents/{agent_id}/",
                    data={"status": "available"},
                    content_type="application/json",
                )

    def phone_system_acts(self) -> None:
        with PhoneSystemControl.lock:
            new_connects = PhoneSystemControl.received[self.connects_seen :]
            self.connects_seen = len(PhoneSystemControl.received)
        connects, self.connects_waiting = [*self.connects_waiting, *new_connects], []
        for connect in connects:
            call = self.calls[connect["call_id"]]
            if call.ended or call.answered:
                continue
            if connect["agent"] in self.on_the_phone():
                # Their line is busy (a transfer reached them as they accepted this caller): the
                # PBX rings them once they are free, unless the caller is connected elsewhere
                # first (Rapport sends them back to the queue).
                if connect in new_connects:
                    self.tally["connects to a busy line held"] += 1
                self.connects_waiting.append(connect)
                continue
            call.connect_agent = connect["agent"]
            call.answered = True
            self.event("call.answered", call, agent=connect["agent"])
            call.hang_up_at = time.monotonic() + self.rng.uniform(0.2, 2.0)
        now = time.monotonic()
        for call in self.calls.values():
            if call.ended:
                continue
            if call.answered and not call.transferred and self.rng.random() < 0.02:
                target = self.free_agent_to_transfer_to()
                if target is None:
                    continue
                # The agent was free a moment ago, as an agent transferring checks; the event
                # reaches Rapport up to 2 s later, while it may be offering them another call.
                call.transferred = True
                call.connect_agent = target
                self.event("call.transferred", call, agent=target)
                call.hang_up_at = now + self.rng.uniform(0.5, 2.0)
            elif call.answered and call.hang_up_at is not None and now >= call.hang_up_at:
                call.ended = True
                if self.rng.random() < HANG_UPS_LOST:
                    self.tally["hang-ups lost"] += 1
                    self.lost_hang_ups.add(call.telephony_id)
                else:
                    self.event("call.ended", call, reason="completed")
            elif not call.answered and now >= call.patience_until:
                call.ended = True
                self.event("call.ended", call, reason="abandoned")

    def on_the_phone(self) -> set[str]:
        """The agents the phone system has on a call."""
        return {
            call.connect_agent
            for call in self.calls.values()
            if call.connect_agent and not call.ended
        }

    def free_agent_to_transfer_to(self) -> str | None:
        """An agent free at both ends: not on a call at the phone system, and available in
        Rapport with no call in hand (a PBX refuses a transfer to a busy line)."""
        on_the_phone = self.on_the_phone()
        in_hand = Call.objects.filter(
            agent__isnull=False, state__in=list(TALKING_STATES | WAITING_STATES)
        ).values_list("agent__telephony_identity", flat=True)
        free = [
            identity
            for identity in Agent.objects.filter(
                id__in=self.clients_by_agent, status=AgentStatus.AVAILABLE
            ).values_list("telephony_identity", flat=True)
            if identity not in on_the_phone and identity not in set(in_hand)
        ]
        return self.rng.choice(free) if free else None

    def watch_for_double_booking(self) -> None:
        """Nobody is on two calls: a call is an agent's from their accepted offer until it is
        over (waiting for the connect, then connected, held or transferred to them).

        Rapport never gives an agent a second call; the phone system may, and Rapport hears of
        it late: an agent hangs up and the phone system connects them to the caller it held
        for them, and the answer overtakes the hang-up on the way (for as long as deliveries
        are late), or the hang-up never comes (until the silent call is swept). Two calls seen
        for longer than that is a fault."""
        now = time.monotonic()
        in_hand = (
            Call.objects.filter(
                agent__isnull=False, state__in=list(TALKING_STATES | WAITING_STATES)
            )
            .values("agent_id")
            .annotate(calls=ArrayAgg("telephony_call_id"), count=Count("id"))
            .filter(count__gt=1)
        )
        seen_now = {}
        for row in in_hand:
            key = (row["agent_id"], frozenset(row["calls"]))
            seen_now[key] = self.two_calls_since.get(key, now)
        self.two_calls_since = seen_now
        for (agent_id, call_ids), since in seen_now.items():
            lost = call_ids & self.lost_hang_ups
            allowed = SILENT_CALL_SECONDS + 5 if lost else LATE_BY_UP_TO + 3
            if now - since <= allowed:
                continue
            calls = Call.objects.filter(telephony_call_id__in=call_ids)
            story = [
                (
                    call.telephony_call_id,
                    call.state,
                    list(
                        call.events.order_by("received_at").values_list(
                            "type", "applied", "outcome"
                        )
                    ),
                    list(call.offers.values_list("agent_id", "state")),
                )
                for call in calls
            ]
            self.two_calls_seen.append((agent_id, story))


def customer_number(n: int) -> str:
    return f"+1415555{n:04d}"


@pytest.fixture
def soak_redis(tmp_path):
    redis = DedicatedRedis(tmp_path / "redis", durable=True)
    redis.data_dir.mkdir()
    redis.start()
    yield redis
    redis.stop()


@pytest.fixture
def control_url():
    PhoneSystemControl.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), PhoneSystemControl)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/control/"
    server.shutdown()


def test_300_disorderly_calls_with_a_redis_restart_and_a_killed_worker(
    settings, queue, make_agent, make_customer, soak_redis, control_url, tmp_path, request
):
    settings.PASSWORD_HASHERS = FAST_PASSWORD_HASHERS
    settings.TELEPHONY_WEBHOOK_SECRET = [SECRET]
    settings.TELEPHONY_CONTROL_URL = control_url
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [soak_redis.url], "prefix": f"soak-{os.getpid()}"},
        }
    }
    channel_layers.backends.clear()
    queue.offer_timeout_seconds = 3
    queue.last_agent_wait_seconds = 2
    queue.save()
    agents = [
        make_agent(f"soak{n:02d}", extension=f"20{n:02d}", status="available")
        for n in range(AGENTS)
    ]
    for n in range(CUSTOMERS):
        make_customer(f"Customer {n}", phones=[customer_number(n)])
    clients = {}
    for agent in agents:
        clients[agent.id] = Client()
        clients[agent.id].force_login(agent.user)
    soak = Soak(phone=PhoneSystem(), agents=agents, clients_by_agent=clients, rng=random.Random(11))

    worker_env = {
        "REDIS_URL": soak_redis.url,
        "TELEPHONY_WEBHOOK_SECRET": SECRET,
        "TELEPHONY_CONTROL_URL": control_url,
        "TELEPHONY_CONNECT_RETRY_SECONDS": "0.2",
        "TELEPHONY_CONNECT_RETRY_MAX_SECONDS": "2",
        "CHANNELS_PREFIX": f"soak-{os.getpid()}",
        "TELEPHONY_SILENT_CALL_SECONDS": str(SILENT_CALL_SECONDS),
    }
    previous_broker = celery_app.conf.broker_url
    celery_app.conf.broker_url = soak_redis.url
    try:
        with (
            mock.patch.dict(os.environ, worker_env),
            running_workers(tmp_path, concurrency=3, beat=True) as workers,
        ):
            # The fourth worker process, a worker of its own on the same queue: the one killed.
            doomed = Workers(queue=workers.queue, schedule_dir=tmp_path, concurrency=1, beat=False)
            doomed.start()
            request.addfinalizer(doomed.stop)
            redis_restarted = worker_killed = False
            # Two agents leave the agent group for a while (a role changed by an administrator).
            leavers = [agent.user for agent in agents[:2]]
            agent_group = Group.objects.get(name="agent")
            out_of_the_group: list[list[float]] = []
            placed = 0
            started = time.monotonic()
            while placed < CALLS or any(not c.ended for c in soak.calls.values()):
                if time.monotonic() - started > 240:
                    stuck = Call.objects.filter(
                        telephony_call_id__in=[c for c, v in soak.calls.items() if not v.ended]
                    ).values_list("telephony_call_id", "state", "agent_id")
                    raise AssertionError(f"calls never connected or ended: {list(stuck)[:20]}")
                # Callers keep coming while the queue is short: a busy floor all along, and no
                # caller waits long enough to be taken for one the phone system forgot.
                queue_is_short = (
                    Call.objects.filter(state__in=list(WAITING_STATES)).count() < WAITING_AT_MOST
                )
                for _ in range(soak.rng.randint(1, 4) if queue_is_short else 0):
                    if placed < CALLS:
                        placed += 1
                        soak.ring(placed)
                soak.deliver_some()
                soak.agents_act()
                soak.phone_system_acts()
                soak.watch_for_double_booking()
                if os.environ.get("SOAK_DIAGNOSE") and int(time.monotonic() - started) % 5 == 0:
                    print(
                        f"{time.monotonic() - started:.0f}s placed {placed}",
                        dict(Agent.objects.values_list("status").annotate(Count("id"))),
                        dict(Call.objects.values_list("state").annotate(Count("id"))),
                        dict(soak.tally),
                        flush=True,
                    )
                # As systemd or Kubernetes would: a worker that died is started again. (Celery's
                # worker can die of a Redis restart: "Unrecoverable error: AttributeError", a
                # known kombu/Celery race.) What it held must not be lost.
                for group in (workers, doomed) if not worker_killed else (workers,):
                    if group.process is not None and group.process.poll() is not None:
                        soak.tally["workers restarted after dying"] += 1
                        group.kill_hard()  # whatever of its process group is left
                        group.start()
                if placed >= CALLS * 0.4 and not redis_restarted:
                    redis_restarted = True
                    soak_redis.stop()
                    time.sleep(1.5)
                    soak_redis.start()
                if placed >= CALLS * 0.6 and not worker_killed:
                    worker_killed = True
                    doomed.kill_hard()
                if placed >= CALLS * 0.3 and not out_of_the_group:
                    agent_group.user_set.remove(*leavers)
                    out_of_the_group.append([time.time()])
                if placed >= CALLS * 0.7 and len(out_of_the_group[0]) == 1:
                    out_of_the_group[0].append(time.time())
                    agent_group.user_set.add(*leavers)
                time.sleep(0.05)
            soak.deliver_some(everything=True)

            def settled() -> bool:
                soak.agents_act()
                soak.watch_for_double_booking()
                not_final = Call.objects.exclude(state__in=FINAL_STATES).count()
                busy = Agent.objects.filter(status=AgentStatus.BUSY).count()
                return not_final == 0 and busy == 0

            # A lost hang-up leaves its call connected until the sweep finds it silent.
            wait_until(settled, timeout=60 + SILENT_CALL_SECONDS, every=0.5)

            def wrap_ups_over() -> bool:
                for agent_id, client in soak.clients_by_agent.items():
                    client.post(f"/api/agents/{agent_id}/ready/")
                return not Agent.objects.filter(status=AgentStatus.WRAP_UP).exists()

            wait_until(wrap_ups_over, timeout=30, every=0.5)
    finally:
        celery_app.conf.broker_url = previous_broker
        channel_layers.backends.clear()

    calls = Call.objects.filter(telephony_call_id__startswith="SOAK-")
    assert calls.count() == CALLS
    assert not calls.exclude(state__in=FINAL_STATES).exists()
    assert (
        calls.filter(state=CallState.ENDED).exists()
        and calls.filter(state=CallState.ABANDONED).exists()
    )
    assert soak.two_calls_seen == [], (
        f"an agent was on two calls at once: {soak.two_calls_seen[:2]}"
    )
    assert not Agent.objects.filter(status=AgentStatus.BUSY).exists()
    # The calls the sweep ended as lost are the calls whose hang-up was lost, and only those:
    # no caller still waiting or talking was cut off.
    ended_as_lost = set(calls.filter(end_reason="lost").values_list("telephony_call_id", flat=True))
    assert soak.lost_hang_ups and ended_as_lost == soak.lost_hang_ups

    # Nobody was offered a call while out of the agent group (an offer already ringing when
    # they left rings out: it was made before).
    removed_at, returned_at = out_of_the_group[0]
    offered_while_out = Offer.objects.filter(
        agent__user__in=leavers,
        offered_at__gt=datetime.fromtimestamp(removed_at + 0.5, tz=UTC),
        offered_at__lt=datetime.fromtimestamp(returned_at, tz=UTC),
    )
    assert not offered_while_out.exists()
    assert Offer.objects.filter(
        agent__user__in=leavers, offered_at__gt=datetime.fromtimestamp(returned_at, tz=UTC)
    ).exists(), "the agents put back in the group were offered calls again"

    # Every call is over and every wrap-up done: no agent reads any customer they were offered.
    readable = [
        (agent_id, customer_id)
        for agent_id, customer_id in sorted(soak.offered_customers)
        if soak.clients_by_agent[agent_id].get(f"/api/customers/{customer_id}/").status_code != 403
    ]
    assert soak.offered_customers and readable == [], "a customer still readable after the call"

    decisions_told = defaultdict(set)
    for connect in PhoneSystemControl.received:
        decisions_told[connect["call_id"]].add((connect["decision_id"], connect["agent"]))
    # A caller sent back to the queue (a transfer put their agent on another call as they
    # accepted them) is told to connect the next agent who accepts them.
    taken_back = set(
        RoutingDecision.objects.filter(
            call__in=calls,
            reason=DecisionReason.AGENT_ON_ANOTHER_CALL,
            detail__why=CONNECTED_TO_ANOTHER_CALL,
        ).values_list("call__telephony_call_id", "agent__telephony_identity")
    )
    told_twice = {
        call: told
        for call, told in decisions_told.items()
        if len({agent for _, agent in told if (call, agent) not in taken_back}) > 1
    }
    assert told_twice == {}, "a call was told to connect two different agents"
    assert any(call.transferred and call.answered for call in soak.calls.values())

    offers = Offer.objects.filter(call__in=calls, call__customer__isnull=False)
    audited = set(
        ContextAccess.objects.filter(reason=AccessReason.OFFER).values_list("call_id", "user_id")
    )
    unaudited = [
        (offer.call_id, offer.agent_id)
        for offer in offers.select_related("agent")
        if (offer.call_id, offer.agent.user_id) not in audited
    ]
    assert unaudited == [], "a screen-pop without its audit row"
    looks_audited = set(
        ContextAccess.objects.filter(reason=AccessReason.CALL).values_list("user_id", "customer_id")
    )
    assert soak.looks and set(soak.looks) <= looks_audited, "a look without its audit row"
    print(
        f"\nsoak: {CALLS} calls in {time.monotonic() - started:.0f} s; {dict(soak.tally)}; "
        f"connects pushed {len(PhoneSystemControl.received)}"
    )
