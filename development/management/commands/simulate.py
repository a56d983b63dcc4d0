"""`manage.py simulate`: a phone system and bot agents played against a running Rapport.

The simulator (the `simulator` package) talks to Rapport only over HTTP and WebSockets; this
command reads from the database what a real phone system would be configured with (the queues'
numbers) and who the demo callers are, then runs it and prints the report.
"""

from __future__ import annotations

import logging
import os
from datetime import datetime
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db.models import Count
from django.utils import timezone

from customers.models import PhoneNumber
from development.management.commands.seed_demo import DEMO_PASSWORD
from routing.models import Agent, Queue
from routing.selectors import last_agent
from simulator import BotLogin, CallerDirectory, SecondsRange, SimulationConfig
from simulator.bots import BotLoginFailed
from simulator.journal import JournalInUse
from simulator.simulation import RapportUnreachable, run_until_signalled

SECRET_FILE = "dev/webhook-secret"


class Command(BaseCommand):
    help = (
        "Simulate a telephony system against a running Rapport: demo callers ring the queues "
        "(signed webhooks), call.connect is taken on a control URL (push) or pulled, and bot "
        "agents answer over the agent socket. Stop with Ctrl-C or SIGTERM: calls in flight are "
        "hung up."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--url", default="http://127.0.0.1:8000", help="Rapport's base URL.")
        parser.add_argument(
            "--secret",
            help="Webhook secret (whsec_...). Default: $TELEPHONY_WEBHOOK_SECRET, else the "
            f"development secret in {settings.RUNTIME_DIR / SECRET_FILE}.",
        )
        parser.add_argument(
            "--control-host", default="127.0.0.1", help="Address the control URL listens on."
        )
        parser.add_argument(
            "--control-port",
            type=int,
            help="Serve the control URL (http://HOST:PORT/control/) for pushed call.connect; "
            "set Rapport's TELEPHONY_CONTROL_URL to it. Without it, instructions are pulled.",
        )
        parser.add_argument(
            "--rate",
            type=float,
            default=4.0,
            help="Calls per minute, on average (random exponential gaps). 0: no callers.",
        )
        parser.add_argument(
            "--minutes", type=float, help="Place calls this long, then stop. Default: until Ctrl-C."
        )
        parser.add_argument(
            "--bots", default="", help="Agents the simulator plays, comma-separated (sam,alex)."
        )
        parser.add_argument(
            "--bot-password", default=DEMO_PASSWORD, help="The bots' password (the demo one)."
        )
        parser.add_argument(
            "--queues",
            default="",
            help="Queue slugs to ring, comma-separated. Default: the queues the bots serve, "
            "or every queue without bots.",
        )
        parser.add_argument("--seed", type=int, help="Seed the random choices (reproducible mix).")
        parser.add_argument(
            "--report", action="store_true", help="Print the figures of the run at the end."
        )
        parser.add_argument(
            "--no-choice",
            action="store_true",
            help="Callers whose patience runs out hang up, never asking for a call back (to "
            "compare a run with the choice, same --seed). The choice needs --control-port.",
        )
        self._add_range(parser, "--patience-seconds", (20, 90), "A caller waits this long.")
        self._add_range(parser, "--talk-seconds", (10, 60), "A connected call lasts this long.")
        self._add_range(
            parser, "--bot-pause-seconds", (1.5, 5), "A bot's pause before accepting or ready."
        )
        parser.add_argument(
            "--drain-seconds",
            type=float,
            default=90.0,
            help="After --minutes, how long calls in flight may finish before they are hung up.",
        )
        parser.add_argument(
            "--journal",
            type=Path,
            help="Keep the ids of calls still owed a call.ended in this file, and end the ones "
            "an earlier run left (stopped with the server, or killed) when starting.",
        )

    @staticmethod
    def _add_range(
        parser: CommandParser, flag: str, default: tuple[float, float], meaning: str
    ) -> None:
        parser.add_argument(
            flag,
            type=float,
            nargs=2,
            metavar=("MIN", "MAX"),
            default=default,
            help=f"{meaning} Random between MIN and MAX (default {default[0]:g} {default[1]:g}).",
        )

    def handle(self, *args: object, **options: object) -> None:
        # At INFO httpx would log every request, every poll included; the simulator logs each
        # call step itself.
        logging.getLogger("httpx").setLevel(logging.WARNING)
        config = self._config(options)
        try:
            report = run_until_signalled(config)
        except (BotLoginFailed, JournalInUse, RapportUnreachable) as failed:
            raise CommandError(str(failed)) from failed
        if options["report"]:
            self.stdout.write("\n".join(report.lines()))

    def _config(self, options: dict) -> SimulationConfig:
        bots = _comma_list(options["bots"])
        queues = _queues_to_ring(_comma_list(options["queues"]), bots)
        try:
            return SimulationConfig(
                base_url=options["url"].rstrip("/"),
                secret=_webhook_secret(options["secret"]),
                queue_numbers=tuple(number for queue in queues for number in queue.numbers),
                callers=caller_directory(queues, now=timezone.now(), bots=bots),
                calls_per_minute=options["rate"],
                minutes=options["minutes"],
                bots=tuple(BotLogin(username, options["bot_password"]) for username in bots),
                control_host=options["control_host"],
                control_port=options["control_port"],
                seed=options["seed"],
                patience=SecondsRange(*options["patience_seconds"]),
                talk=SecondsRange(*options["talk_seconds"]),
                bot_pause=SecondsRange(*options["bot_pause_seconds"]),
                drain_seconds=options["drain_seconds"],
                journal_path=options["journal"],
                choice=not options["no_choice"],
            )
        except ValueError as invalid:
            raise CommandError(str(invalid)) from invalid


def _comma_list(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def _webhook_secret(given: str | None) -> str:
    """The secret Rapport signs with: the first of a rotation list."""
    secret = given or os.environ.get("TELEPHONY_WEBHOOK_SECRET", "")
    secret_file = settings.RUNTIME_DIR / SECRET_FILE
    if not secret and secret_file.exists():
        secret = secret_file.read_text()
    secret = next((part.strip() for part in secret.split(",") if part.strip()), "")
    if not secret:
        raise CommandError(
            "No webhook secret: pass --secret, set TELEPHONY_WEBHOOK_SECRET, or run `up` once."
        )
    return secret


def _queues_to_ring(slugs: list[str], bots: list[str]) -> list[Queue]:
    queues = Queue.objects.prefetch_related("agents__user")
    if slugs:
        chosen = list(queues.filter(slug__in=slugs))
        missing = set(slugs) - {queue.slug for queue in chosen}
        if missing:
            raise CommandError(f"No such queue: {', '.join(sorted(missing))}")
    else:
        chosen = list(queues)
        served_by_bots = [
            queue
            for queue in chosen
            if any(agent.user.username in bots for agent in queue.agents.all())
        ]
        chosen = served_by_bots or chosen
    chosen = [queue for queue in chosen if queue.numbers]
    if not chosen:
        raise CommandError("No queue with a number to ring: load the demo data (seed_demo).")
    return chosen


def caller_directory(
    queues: list[Queue], *, now: datetime, bots: list[str] = ()
) -> CallerDirectory:
    """Returning callers: the numbers of customers with notes (each number one customer's).
    Household lines: numbers several customers share. Last agents: Rapport's own rule
    (routing.selectors.last_agent), within the look-back of the first queue rung."""
    shared = set(
        PhoneNumber.objects.values("number")
        .annotate(customers=Count("customer", distinct=True))
        .filter(customers__gt=1)
        .values_list("number", flat=True)
    )
    own_numbers = PhoneNumber.objects.filter(customer__erased_at__isnull=True).exclude(
        number__in=shared
    )
    with_notes = own_numbers.filter(customer__notes__isnull=False)
    returning = dict(
        (with_notes if with_notes.exists() else own_numbers)
        .values_list("number", "customer_id")
        .distinct()
    )
    identities = dict(Agent.objects.values_list("id", "telephony_identity"))
    # People serving the rung queues: a caller of someone who never takes these calls would
    # only fall back to the queue.
    people_ids = set(
        Agent.objects.filter(queues__in=queues)
        .exclude(user__username__in=bots)
        .values_list("id", flat=True)
    )
    last_agents = {}
    peoples_callers = []
    for number, customer_id in returning.items():
        agent = last_agent(customer_id=customer_id, queue_id=queues[0].id, now=now)
        if agent is not None:
            last_agents[number] = identities[agent["id"]]
            if agent["id"] in people_ids:
                peoples_callers.append(number)
    return CallerDirectory(
        returning=tuple(sorted(returning)),
        household=tuple(sorted(shared)),
        last_agents=last_agents,
        peoples_callers=tuple(sorted(peoples_callers)),
    )
