"""The bench's people and calls, written inside Django, in a process of its own:

    python -m bench.data --team 200     # empty the database; the screen-pop's team and callers
    python -m bench.data --webhook      # the webhook benches' agents and their queue

Run with the bench's environment (`servers.fill` does); prints JSON: the team's session keys.
"""

from __future__ import annotations

import argparse
import json

import django

django.setup()

from django.contrib.auth.models import Group, User  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.utils import timezone  # noqa: E402

from bench.events import (  # noqa: E402
    HEAVY_CALLERS,
    HEAVY_HISTORY,
    LIGHT_CALLERS,
    QUEUE_NUMBER,
    WEBHOOK_AGENTS,
    WEBHOOK_QUEUE,
    heavy_number,
    light_number,
    webhook_agent,
)
from bench.fleet import session_keys  # noqa: E402
from customers.models import Consent, Customer, PhoneNumber  # noqa: E402
from routing.models import Agent, Call, Queue  # noqa: E402


def team(agents: int) -> list[str]:
    """Empty the database, then: one queue, `agents` agents in it, signed in (their session
    keys returned), and the callers with their history (`events.callers()`)."""
    call_command("flush", "--noinput", verbosity=0)
    # Nobody waits for a last agent who is ringing for someone else: the figure is the offer's.
    queue = Queue.objects.create(
        slug="loyalty",
        name="Loyalty",
        numbers=[QUEUE_NUMBER],
        offer_timeout_seconds=120,
        last_agent_wait_seconds=0,
    )
    group = Group.objects.get_or_create(name="agent")[0]
    users = User.objects.bulk_create(User(username=f"bench-{n:03d}") for n in range(agents))
    group.user_set.add(*users)
    members = Agent.objects.bulk_create(
        Agent(user=user, display_name=f"Bench {n:03d}", telephony_identity=f"7{n:03d}")
        for n, user in enumerate(users)
    )
    Agent.queues.through.objects.bulk_create(
        Agent.queues.through(agent_id=agent.id, queue_id=queue.id) for agent in members
    )
    sessions = session_keys(users)

    customers = Customer.objects.bulk_create(
        [Customer(name=f"Light {n}", consent=Consent.OPEN) for n in range(LIGHT_CALLERS)]
        + [Customer(name=f"Heavy {n}", consent=Consent.OPEN) for n in range(HEAVY_CALLERS)]
    )
    numbers = [light_number(n) for n in range(LIGHT_CALLERS)]
    numbers += [heavy_number(n) for n in range(HEAVY_CALLERS)]
    PhoneNumber.objects.bulk_create(
        PhoneNumber(customer=customer, number=number)
        for customer, number in zip(customers, numbers, strict=True)
    )
    now = timezone.now()
    Call.objects.bulk_create(
        Call(
            telephony_call_id=f"light-past-{n}",
            from_e164=light_number(n),
            queue=queue,
            customer=customer,
            agent=members[n % agents],
            state="ended",
            connected_at=now - timezone.timedelta(days=3),
        )
        for n, customer in enumerate(customers[:LIGHT_CALLERS])
    )
    with connection.cursor() as cursor:
        for n, customer in enumerate(customers[LIGHT_CALLERS:]):
            cursor.execute(
                """
                INSERT INTO routing_call (telephony_call_id, from_number, from_e164, to_number,
                    queue_id, customer_id, agent_id, state, identity_verified, end_reason,
                    caller_choice, wrap_up_label, call_back_promised,
                    created_at, connected_at, state_changed_at)
                SELECT 'heavy-past-' || %s || '-' || g, '', %s, '', %s, %s, %s, 'ended', false,
                    '', '', '', false, now(), now() - make_interval(mins => g), now()
                FROM generate_series(1, %s) AS g
                """,
                [
                    n,
                    heavy_number(n),
                    queue.id,
                    customer.id,
                    members[(n * 7) % agents].id,
                    HEAVY_HISTORY,
                ],
            )
        cursor.execute("ANALYZE routing_call")
    return sessions


def webhook_agents() -> None:
    """The agents who answer the webhook benches' calls, and the queue those calls may name (no
    agent is a member: nobody is offered them, the events say who answered)."""
    # A short wrap-up: by goals.py's idle phase these agents are back to available.
    Queue.objects.get_or_create(
        slug=WEBHOOK_QUEUE,
        defaults={"name": "Webhook bench", "last_agent_wait_seconds": 0, "wrap_up_seconds": 5},
    )
    for n in range(WEBHOOK_AGENTS):
        user, _ = User.objects.get_or_create(username=f"bench-agent-{n}")
        Agent.objects.get_or_create(
            user=user,
            defaults={"display_name": f"Webhook {n}", "telephony_identity": webhook_agent(n)},
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--team", type=int, metavar="AGENTS", help="empty the database first")
    parser.add_argument("--webhook", action="store_true")
    options = parser.parse_args()
    sessions = team(options.team) if options.team else []
    if options.webhook:
        webhook_agents()
    print(json.dumps({"sessions": sessions}))


if __name__ == "__main__":
    main()
