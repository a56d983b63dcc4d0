"""Demo team and several hundred customers with varied, realistic histories."""

import random
from datetime import timedelta

from django.contrib.auth.models import Group, User
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone
from tqdm import tqdm

from customers.models import (
    CallNote,
    Channel,
    Consent,
    Customer,
    HoldTolerance,
    Pace,
    PhoneNumber,
    Provenance,
    ReturnBehaviour,
    SurveyTrust,
)
from routing import wrap_up
from routing.models import Agent, Call, Queue
from routing.states import CallState

DEMO_PASSWORD = "rapport-demo"
DEMO_LOGINS = [
    ("dana", "agent (loyalty, VIP)"),
    ("sam", "agent (loyalty)"),
    ("alex", "agent (loyalty)"),
    ("priya", "agent (VIP)"),
    ("morgan", "supervisor"),
    ("admin", "administrator"),
]
AGENTS = [
    ("dana", "Dana", "Okafor", "1001", ["loyalty", "vip"]),
    ("sam", "Sam", "Lindqvist", "1002", ["loyalty"]),
    ("alex", "Alex", "Moreau", "1003", ["loyalty"]),
    ("priya", "Priya", "Raman", "1004", ["vip"]),
]
QUEUES = [
    ("loyalty", "Loyalty", ["+18005550100"]),
    ("vip", "VIP line", ["+18005550199"]),
]
SHARED_HOUSEHOLD_NUMBER = "+14155550142"
LONG_HISTORY_CALLS = 1000

FIRST_NAMES = [
    "Maya",
    "Jordan",
    "Elena",
    "Tom",
    "Aisha",
    "Luis",
    "Grace",
    "Ken",
    "Nora",
    "Omar",
    "Ruth",
    "Ivan",
    "Zoe",
    "Carlos",
    "Hana",
    "Peter",
    "Leila",
    "Ben",
    "Sofia",
    "Malik",
    "Ines",
    "Derek",
    "Yuki",
    "Frank",
    "Amara",
    "Joel",
    "Clara",
    "Raj",
    "Tess",
    "Victor",
]
LAST_NAMES = [
    "Bishop",
    "Chen",
    "Duarte",
    "Ellis",
    "Fischer",
    "Garcia",
    "Hughes",
    "Iyer",
    "Jensen",
    "Kowalski",
    "Lopez",
    "Murphy",
    "Nakamura",
    "Owens",
    "Patel",
    "Quinn",
    "Rossi",
    "Schmidt",
    "Turner",
    "Ueda",
    "Vargas",
    "Walsh",
    "Xu",
    "Young",
    "Zimmer",
]
OCCASIONS = [
    "first date",
    "new baby",
    "new job",
    "wedding guest",
    "marathon training",
    "back to school",
    "anniversary",
    "job interview",
    "hiking trip",
    "",
]
INTENTS = [
    "exchange for a half size up",
    "looking for comfortable work shoes",
    "gift",
    "return a pair that pinched",
    "check on a late delivery",
    "replace worn-out runners",
    "shoes for a first date",
    "something for a new stage of career",
]
SHOPPING_FOR = ["herself", "himself", "her partner", "their son", "their daughter", "a friend", ""]
SIZES = ["W 7.5", "W 8 wide", "M 10", "M 11.5", "kids 2", "W 9", "M 9 narrow", ""]
NOTE_TEXTS = [
    "Was in a hurry, kept it short. Exchange sorted.",
    "Happy to chat; told me about the trip. Follow up when the boots are back in stock.",
    "Prefers a text when the order ships, she is often in meetings.",
    "Said put her on hold if needed, no problem.",
    "Returned the last pair: toe box too narrow. Suggested wide fit.",
    "Asked us not to keep anything beyond the order. Kept it to the order.",
    "Great call. Buying for the whole family this season.",
    "Called about the refund; it was processed on the 3rd.",
]


class Command(BaseCommand):
    help = "Create the demo team, queues and several hundred customers with call histories."

    def add_arguments(self, parser):
        parser.add_argument("--customers", type=int, default=400)
        parser.add_argument(
            "--if-empty",
            action="store_true",
            help="Do nothing when the database already has agents.",
        )
        parser.add_argument("--seed", type=int, default=7)

    def handle(self, *args, customers, if_empty, seed, **options):
        if if_empty and Agent.objects.exists():
            self.stdout.write("Demo data already loaded; keeping it.")
            return
        rng = random.Random(seed)
        with transaction.atomic():
            queues = create_queues()
            agents = create_team(queues)
            create_customers(rng, customers, queues, agents)
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo data: {len(agents)} agents, {customers} customers, "
                f"{Call.objects.count()} past calls, {CallNote.objects.count()} notes."
            )
        )


def create_queues() -> dict[str, Queue]:
    queues = {}
    for slug, name, numbers in QUEUES:
        queues[slug], _ = Queue.objects.update_or_create(
            slug=slug, defaults={"name": name, "numbers": numbers}
        )
        wrap_up.give_default_codes(queues[slug])
    return queues


def _user(username, first, last, *, groups=(), staff=False) -> User:
    user, _ = User.objects.get_or_create(username=username)
    user.first_name, user.last_name = first, last
    user.is_staff = user.is_superuser = staff
    user.set_password(DEMO_PASSWORD)
    user.save()
    for group_name in groups:
        user.groups.add(Group.objects.get_or_create(name=group_name)[0])
    return user


def create_team(queues: dict[str, Queue]) -> list[Agent]:
    agents = []
    for username, first, last, extension, queue_slugs in AGENTS:
        user = _user(username, first, last, groups=["agent"])
        agent, _ = Agent.objects.update_or_create(
            user=user, defaults={"display_name": f"{first} {last}", "telephony_identity": extension}
        )
        agent.queues.set([queues[slug] for slug in queue_slugs])
        agents.append(agent)
    _user("morgan", "Morgan", "Blake", groups=["supervisor"])
    _user("admin", "Ada", "Admin", staff=True)
    return agents


def _random_preferences(rng: random.Random, agents: list[Agent], now) -> dict:
    fields = {}
    choices = {
        "pace": [Pace.BRISK, Pace.UNHURRIED, Pace.UNKNOWN, Pace.UNKNOWN],
        "hold_tolerance": [HoldTolerance.FINE, HoldTolerance.AVOID, HoldTolerance.UNKNOWN],
        "preferred_channel": [Channel.PHONE, Channel.TEXT, Channel.EMAIL, Channel.UNKNOWN],
        # About half want to stay anonymous.
        "consent": [Consent.CLOSED, Consent.CLOSED, Consent.CONDITIONAL, Consent.OPEN],
    }
    for name, options in choices.items():
        value = rng.choice(options)
        fields[name] = value
        if value != "unknown":
            said = rng.random() < 0.6
            fields[f"{name}_source"] = (
                Provenance.SAID_BY_CALLER if said else Provenance.INFERRED_BY_AGENT
            )
            fields[f"{name}_set_by"] = rng.choice(agents).user
            fields[f"{name}_set_at"] = now - timedelta(days=rng.randint(1, 400))
    return fields


def create_customers(rng, count, queues, agents) -> None:
    now = timezone.now()
    customers = []
    for index in range(count):
        name = f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}"
        customers.append(
            Customer(
                name=name,
                email=f"{name.lower().replace(' ', '.')}.{index}@example.com",
                external_id=f"DEMO-{index:05d}",
                customer_since=(now - timedelta(days=rng.randint(30, 3650))).date(),
                survey_trust=rng.choice(list(SurveyTrust)),
                return_behaviour=rng.choice(list(ReturnBehaviour)),
                **_random_preferences(rng, agents, now),
            )
        )
    customers = Customer.objects.bulk_create(customers)
    phones = [
        PhoneNumber(customer=c, number=f"+1415{5550200 + i:07d}", label="mobile")
        for i, c in enumerate(customers)
    ]
    # A household line shared by the first two customers: the agent must ask who is calling.
    phones += [
        PhoneNumber(customer=c, number=SHARED_HOUSEHOLD_NUMBER, label="home") for c in customers[:2]
    ]
    PhoneNumber.objects.bulk_create(phones)

    long_history = customers[2]
    for customer in tqdm(customers, desc="Customer histories", unit="customer"):
        calls = LONG_HISTORY_CALLS if customer == long_history else rng.randint(0, 8)
        _create_history(rng, customer, calls, queues, agents, now)


def _create_history(rng, customer, call_count, queues, agents, now) -> None:
    calls, notes = [], []
    days_ago = sorted((rng.uniform(1, 700) for _ in range(call_count)), reverse=True)
    # Callers tend to reach the same agent again: that is the promise being demonstrated.
    usual_agent = rng.choice(agents)
    for days in days_ago:
        agent = usual_agent if rng.random() < 0.7 else rng.choice(agents)
        connected_at = now - timedelta(days=days)
        calls.append(
            Call(
                telephony_call_id=f"demo-{customer.pk}-{len(calls)}",
                from_number=f"+1415{5550200 + customer.pk:07d}",
                from_e164=f"+1415{5550200 + customer.pk:07d}",
                to_number=QUEUES[0][2][0],
                queue=queues["loyalty"],
                customer=customer,
                agent=agent,
                state=CallState.ENDED,
                identity_verified=rng.random() < 0.5,
                end_reason="completed",
                created_at=connected_at - timedelta(seconds=rng.randint(2, 40)),
                ringing_at=connected_at - timedelta(seconds=rng.randint(2, 40)),
                connected_at=connected_at,
                ended_at=connected_at + timedelta(minutes=rng.randint(2, 45)),
                state_changed_at=connected_at + timedelta(minutes=50),
            )
        )
    calls = Call.objects.bulk_create(calls)
    for call in calls:
        if rng.random() < 0.8:
            notes.append(
                CallNote(
                    customer=customer,
                    call_id=call.id,
                    author=call.agent.user,
                    text=rng.choice(NOTE_TEXTS),
                    occasion=rng.choice(OCCASIONS),
                    intent=rng.choice(INTENTS),
                    shopping_for=rng.choice(SHOPPING_FOR),
                    sizes=rng.choice(SIZES),
                    open_matter=rng.random() < 0.1,
                    created_at=call.ended_at,
                )
            )
    CallNote.objects.bulk_create(notes)
