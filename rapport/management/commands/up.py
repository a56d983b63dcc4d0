"""Start all of Rapport in the foreground: database, Redis, web + sockets, worker, scheduler."""

import base64
import os
import secrets
import shlex
import subprocess
import sys

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from honcho.manager import Manager

from rapport.embedded import embedded_services
from rapport.management.commands.seed_demo import DEMO_LOGINS, DEMO_PASSWORD


def _webhook_secret(state_dir) -> str:
    """A stable development secret, so a telephony simulator configured once keeps working."""
    secret_file = state_dir / "webhook-secret"
    if not secret_file.exists():
        state_dir.mkdir(parents=True, exist_ok=True)
        secret_file.write_text("whsec_" + base64.b64encode(secrets.token_bytes(24)).decode())
        secret_file.chmod(0o600)
    return secret_file.read_text().strip()


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

    def handle(self, *args, port, host, no_demo, workers, **options):
        state_dir = settings.RUNTIME_DIR / "dev"
        with embedded_services(state_dir) as urls:
            env = {**os.environ, **urls}
            env.setdefault("TELEPHONY_WEBHOOK_SECRET", _webhook_secret(state_dir))
            self._manage(env, "migrate", "--noinput", "-v", "0")
            if not no_demo:
                self._manage(env, "seed_demo", "--if-empty")
            returncode = self._run_processes(
                env,
                host=host,
                port=port,
                workers=workers,
                state_dir=state_dir,
                show_demo=not no_demo,
            )
        if returncode not in (0, None, 130, 143):
            raise CommandError(f"a process stopped with exit code {returncode}")

    def _manage(self, env: dict, *arguments: str) -> None:
        completed = subprocess.run(
            [sys.executable, "manage.py", *arguments], env=env, cwd=settings.BASE_DIR
        )
        if completed.returncode != 0:
            raise CommandError(f"manage.py {' '.join(arguments)} failed")

    def _run_processes(self, env, *, host, port, workers, state_dir, show_demo) -> int | None:
        python = shlex.quote(sys.executable)
        manager = Manager()
        # The ASGI server runs each request's sync code in a fresh thread: a pool reuses
        # database connections across them.
        web_env = {**env, "DB_POOL_MAX_SIZE": env.get("DB_POOL_MAX_SIZE", "10")}
        manager.add_process(
            "web",
            f"{python} -m uvicorn rapport.asgi:application --host {shlex.quote(host)} "
            f"--port {port} --no-access-log --lifespan off",
            env=web_env,
            cwd=str(settings.BASE_DIR),
        )
        manager.add_process(
            "worker",
            f"{python} -m celery -A rapport worker --loglevel INFO --concurrency {workers} "
            f"--hostname rapport@%h",
            env=env,
            cwd=str(settings.BASE_DIR),
        )
        manager.add_process(
            "scheduler",
            f"{python} -m celery -A rapport beat --loglevel INFO "
            f"--schedule {shlex.quote(str(state_dir / 'celerybeat-schedule'))}",
            env=env,
            cwd=str(settings.BASE_DIR),
        )
        self._print_welcome(host, port, show_demo, env)
        manager.loop()
        return manager.returncode

    def _print_welcome(self, host, port, show_demo, env) -> None:
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
        lines += ["  Stop with Ctrl-C.", ""]
        self.stdout.write("\n".join(lines))
        self.stdout.flush()
