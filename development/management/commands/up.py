"""Start all of Rapport in the foreground: database, Redis, web + sockets, worker, scheduler."""

import base64
import os
import secrets
import shlex
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from honcho.manager import Manager

from development import pbx
from development.embedded import embedded_services, free_port
from development.management.commands.seed_demo import DEMO_LOGINS, DEMO_PASSWORD
from development.running_services import forget_service_urls, record_service_urls


def _webhook_secret(state_dir) -> str:
    """A stable development secret, so a telephony simulator configured once keeps working."""
    secret_file = state_dir / "webhook-secret"
    if not secret_file.exists():
        state_dir.mkdir(parents=True, exist_ok=True)
        secret_file.write_text("whsec_" + base64.b64encode(secrets.token_bytes(24)).decode())
        secret_file.chmod(0o600)
    return secret_file.read_text().strip()


SIMULATED_CALLS_PER_MINUTE = 3.0
SIMULATED_BOTS = ("sam", "alex")


@dataclass(frozen=True)
class SimulatedLine:
    """`manage.py simulate` as a process of `up`: callers ring, the bots answer beside you."""

    calls_per_minute: float
    bots: list[str]
    control_port: int | None
    # Calls still owed a hang-up: the next start ends what a killed run left waiting.
    journal: Path
    more_arguments: list[str]

    @property
    def control_url(self) -> str:
        return f"http://127.0.0.1:{self.control_port}/control/"

    def command(self, *, python_path: str, rapport_url: str) -> list[str]:
        return [
            python_path,
            "manage.py",
            "simulate",
            "--url",
            rapport_url,
            "--rate",
            f"{self.calls_per_minute:g}",
            "--bots",
            ",".join(self.bots),
            # With a real phone system's control URL configured, the simulator pulls instead.
            *(
                ["--control-host", "127.0.0.1", "--control-port", str(self.control_port)]
                if self.control_port is not None
                else []
            ),
            "--journal",
            str(self.journal),
            *self.more_arguments,
        ]

    def banner(self) -> list[str]:
        bots = " and ".join(self.bots) or "no bots"
        pace = (
            f"a caller about every {60 / self.calls_per_minute:.0f} s"
            if self.calls_per_minute > 0
            else "no callers"
        )
        return [
            f"  Simulated phone line: {pace}; {bots} answer too.",
            "    (simulated calls are marked in their metadata; turn off: "
            "make run ARGS=--no-simulate)",
        ]


class SimulatorFirstManager(Manager):
    """honcho's manager, stopping the simulated phone line before the rest: its last hang-ups
    must reach the webhook, or its calls would still be waiting at the next start.

    Uses honcho's process table (`_processes`, `_procmgr`); honcho is pinned below 3.
    """

    FIRST = "phone-line"
    GRACE_SECONDS = 8.0

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._first_asked_to_stop = False

    def terminate(self) -> None:
        first = self._processes.get(self.FIRST)
        if (
            not self._first_asked_to_stop
            and first is not None
            and first.get("pid") is not None
            and "returncode" not in first
        ):
            self._first_asked_to_stop = True
            self._system_print(f"stopping {self.FIRST} first\n")
            self._procmgr.terminate(first["pid"])
            # The loop calls terminate() again when it stops; this is the deadline for that.
            timer = threading.Timer(self.GRACE_SECONDS, super().terminate)
            timer.daemon = True
            timer.start()
            return
        super().terminate()


@dataclass(frozen=True)
class PbxLine:
    """Rapport's own PBX as processes of `up` (`--pbx`): the shipped Kamailio, rtpengine, and
    baresip callers dialling the Loyalty queue, so a softphone in the console rings with real
    SIP and RTP (docs/telephony.md, "Kamailio (tested)")."""

    sip_port: int
    ws_port: int
    rtpengine_port: int
    route_hint_token: str
    runtime_dir: Path
    calls_every_seconds: float

    def settings(self, state_dir: Path) -> dict[str, str]:
        """Rapport's side: Generic CTI and the softphone, for this PBX."""
        return {
            "TELEPHONY_CTI_TOKEN": pbx.stable_secret(state_dir, "cti-token"),
            "SOFTPHONE_SHARED_SECRET": pbx.stable_secret(state_dir, "softphone-secret"),
            "SOFTPHONE_WEBSOCKET_URL": f"ws://127.0.0.1:{self.ws_port}",
            "SOFTPHONE_SIP_DOMAIN": pbx.DOMAIN,
        }

    def processes(self, env: dict[str, str], *, rapport_url: str) -> dict[str, tuple[list, dict]]:
        kamailio_env = pbx.kamailio_environment(
            rapport_url=rapport_url,
            route_hint_token=self.route_hint_token,
            cti_token=env["TELEPHONY_CTI_TOKEN"],
            shared_secret=env["SOFTPHONE_SHARED_SECRET"],
            sip_port=self.sip_port,
            ws_port=self.ws_port,
            rtpengine_port=self.rtpengine_port,
        )
        self.runtime_dir.mkdir(parents=True, exist_ok=True)
        return {
            "rtpengine": (pbx.rtpengine_command(self.rtpengine_port), env),
            "kamailio": (pbx.kamailio_command(self.runtime_dir), {**env, **kamailio_env}),
            "sip-callers": (
                [
                    sys.executable,
                    *("-m", "development.pbx", "callers"),
                    *("--pbx", f"127.0.0.1:{self.sip_port}"),
                    *("--every", f"{self.calls_every_seconds:g}"),
                ],
                env,
            ),
        }

    def banner(self) -> list[str]:
        return [
            f"  PBX (Kamailio):    sip:127.0.0.1:{self.sip_port}, softphones "
            f"ws://127.0.0.1:{self.ws_port}; a SIP caller dials +18005550100 about every "
            f"{self.calls_every_seconds:.0f} s",
        ]


class Command(BaseCommand):
    help = (
        "Run Rapport: embedded PostgreSQL and Redis (unless DATABASE_URL / REDIS_URL are set), "
        "migrations, demo data on first run, the ASGI server, a Celery worker and the scheduler."
    )
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--no-demo", action="store_true", help="Do not load demo data.")
        parser.add_argument("--workers", type=int, default=2, help="Celery worker processes.")
        parser.add_argument(
            "--no-simulate",
            action="store_true",
            help="Do not start the simulated phone line (it runs by default with demo data).",
        )
        parser.add_argument(
            "--simulate",
            action="store_true",
            help="Start the simulated phone line even without demo data.",
        )
        parser.add_argument(
            "--simulate-calls-per-minute",
            type=float,
            default=SIMULATED_CALLS_PER_MINUTE,
            help=f"Pace of the simulated callers (default {SIMULATED_CALLS_PER_MINUTE:g}).",
        )
        parser.add_argument(
            "--simulate-args",
            default="",
            help="More options for the simulator, as one string (see manage.py simulate --help).",
        )
        parser.add_argument(
            "--pbx",
            action="store_true",
            help=(
                "Also run Rapport's own PBX (Kamailio, rtpengine: Debian packages, installed by "
                "scripts/ensure-sip) with simulated SIP callers: real calls for the softphone."
            ),
        )
        parser.add_argument(
            "--pbx-calls-every",
            type=float,
            default=45.0,
            help="Seconds between the PBX's simulated SIP callers (default 45).",
        )
        parser.add_argument(
            "--simulate-bots",
            default=",".join(SIMULATED_BOTS),
            help="Demo agents the simulator plays (comma-separated; empty for none).",
        )

    def handle(self, *args, port, host, no_demo, workers, **options):
        state_dir = settings.RUNTIME_DIR / "dev"
        simulate = not options["no_simulate"] and (options["simulate"] or not no_demo)
        with embedded_services(state_dir) as urls:
            # Commands in another terminal find these servers through the record (settings).
            record_service_urls(state_dir, urls)
            try:
                env = {**os.environ, **urls, "RAPPORT_STARTED_BY_UP": "1"}
                # A developer's machine: plain HTTP on 127.0.0.1 and the development SECRET_KEY.
                env.setdefault("RAPPORT_DEVELOPMENT", "1")
                env.setdefault("TELEPHONY_WEBHOOK_SECRET", _webhook_secret(state_dir))
                self._manage(env, "migrate", "--noinput", "-v", "0")
                if not no_demo:
                    self._manage(env, "seed_demo", "--if-empty")
                simulator = None
                if simulate:
                    simulator = SimulatedLine(
                        calls_per_minute=options["simulate_calls_per_minute"],
                        bots=[b.strip() for b in options["simulate_bots"].split(",") if b.strip()],
                        control_port=None if env.get("TELEPHONY_CONTROL_URL") else free_port(),
                        journal=state_dir / "phone-line-calls.json",
                        more_arguments=shlex.split(options["simulate_args"]),
                    )
                    if simulator.control_port is not None:
                        env["TELEPHONY_CONTROL_URL"] = simulator.control_url
                line = self._pbx_line(env, state_dir, options) if options["pbx"] else None
                if line is not None:
                    env.update(line.settings(state_dir))
                returncode = self._run_processes(
                    env,
                    host=host,
                    port=port,
                    workers=workers,
                    state_dir=state_dir,
                    show_demo=not no_demo,
                    simulator=simulator,
                    line=line,
                )
            finally:
                forget_service_urls(state_dir)
        if returncode not in (0, None, 130, 143):
            raise CommandError(f"a process stopped with exit code {returncode}")

    def _pbx_line(self, env: dict, state_dir: Path, options: dict) -> PbxLine | None:
        missing = pbx.ensure_sip_packages()
        if missing:
            self.stderr.write(f"--pbx: not started, missing {', '.join(missing)}")
            return None
        token = (
            subprocess.run(
                [
                    sys.executable,
                    *("manage.py", "shell", "--no-imports", "-c"),
                    "from development.pbx import ensure_route_hint_token; "
                    "print(ensure_route_hint_token())",
                ],
                env=env,
                cwd=settings.BASE_DIR,
                capture_output=True,
                text=True,
                check=True,
            )
            .stdout.strip()
            .splitlines()[-1]
        )
        return PbxLine(
            sip_port=free_port(),
            ws_port=free_port(),
            rtpengine_port=free_port(),
            route_hint_token=token,
            runtime_dir=state_dir / "kamailio",
            calls_every_seconds=options["pbx_calls_every"],
        )

    def _manage(self, env: dict, *arguments: str) -> None:
        completed = subprocess.run(
            [sys.executable, "manage.py", *arguments], env=env, cwd=settings.BASE_DIR
        )
        if completed.returncode != 0:
            raise CommandError(f"manage.py {' '.join(arguments)} failed")

    def _run_processes(
        self, env, *, host, port, workers, state_dir, show_demo, simulator, line=None
    ) -> int | None:
        python = shlex.quote(sys.executable)
        base_url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}"
        manager = SimulatorFirstManager()
        # The ASGI server runs each request's sync code in a thread of its own (lent from its
        # pool of threads): a connection pool shares a few database connections among them.
        web_env = {**env, "DB_POOL_MAX_SIZE": env.get("DB_POOL_MAX_SIZE", "10")}
        manager.add_process(
            "web",
            f"{python} -m uvicorn rapport.asgi:application --host {shlex.quote(host)} "
            f"--port {port} --no-access-log --lifespan on",
            env=web_env,
            cwd=str(settings.BASE_DIR),
        )
        manager.add_process(
            "worker",
            f"{python} -m celery -A rapport --quiet worker --concurrency {workers} "
            f"--hostname rapport@%h",
            env=env,
            cwd=str(settings.BASE_DIR),
        )
        manager.add_process(
            "scheduler",
            f"{python} -m celery -A rapport --quiet beat "
            f"--schedule {shlex.quote(str(state_dir / 'celerybeat-schedule'))}",
            env=env,
            cwd=str(settings.BASE_DIR),
        )
        if simulator is not None:
            manager.add_process(
                "phone-line",
                shlex.join(simulator.command(python_path=sys.executable, rapport_url=base_url)),
                env=env,
                cwd=str(settings.BASE_DIR),
            )
        if line is not None:
            for name, (command, process_env) in line.processes(env, rapport_url=base_url).items():
                manager.add_process(
                    name, shlex.join(command), env=process_env, cwd=str(settings.BASE_DIR)
                )
        self._print_welcome(host, port, show_demo, env, simulator)
        if line is not None:
            self.stdout.write("\n".join(line.banner()) + "\n")
        manager.loop()
        return manager.returncode

    def _print_welcome(self, host, port, show_demo, env, simulator) -> None:
        lines = [
            "",
            f"  Rapport console:   http://{host}:{port}/",
            f"  Admin:             http://{host}:{port}/admin/",
            f"  API docs:          http://{host}:{port}/api/docs/",
            f"  Webhook secret:    {env['TELEPHONY_WEBHOOK_SECRET']}",
        ]
        if show_demo:
            lines.append(f"  Demo logins (password '{DEMO_PASSWORD}'):")
            lines += [f"    {username:<10} {role}" for username, role in DEMO_LOGINS]
        if simulator is not None:
            lines += simulator.banner()
        lines += ["  Stop with Ctrl-C.", ""]
        self.stdout.write("\n".join(lines))
        self.stdout.flush()
