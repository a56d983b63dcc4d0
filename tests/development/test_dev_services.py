"""Commands beside `make run`: they find its embedded servers, or say in one line what to do."""

import json
import os
import subprocess
import sys

from django.conf import settings

from development.running_services import (
    NOTHING_RUNNING,
    forget_service_urls,
    record_service_urls,
    recorded_service_urls,
)


def _manage(data_dir, *arguments, **env):
    environ = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")} | {
        "RAPPORT_DATA_DIR": str(data_dir),
        **env,
    }
    return subprocess.run(
        [sys.executable, "manage.py", *arguments],
        cwd=settings.BASE_DIR,
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_with_nothing_running_and_no_urls_a_command_says_both_ways_out_in_one_line(tmp_path):
    run = _manage(
        tmp_path, "shell", "-c", "from customers.models import Customer; Customer.objects.count()"
    )

    assert run.returncode == 1
    assert run.stderr.strip() == NOTHING_RUNNING
    assert "Traceback" not in run.stderr
    assert "make run" in NOTHING_RUNNING and "DATABASE_URL" in NOTHING_RUNNING


def test_a_command_uses_the_servers_a_live_up_recorded(tmp_path):
    record_service_urls(tmp_path / "dev", {"DATABASE_URL": os.environ["DATABASE_URL"]})
    try:
        run = _manage(
            tmp_path,
            "shell",
            "-c",
            "from django.db import connection; connection.ensure_connection(); print('reached')",
        )
    finally:
        forget_service_urls(tmp_path / "dev")

    assert run.returncode == 0, run.stderr
    assert run.stdout.strip().splitlines()[-1] == "reached"


def test_a_record_left_by_an_up_that_is_gone_is_ignored(tmp_path):
    state_dir = tmp_path / "dev"
    state_dir.mkdir()
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    (state_dir / "services.json").write_text(
        json.dumps({"pid": int(gone.stdout), "DATABASE_URL": "postgres://x@/y"})
    )

    assert recorded_service_urls(state_dir) == {}


def test_the_record_is_private_and_removed_by_the_up_that_wrote_it(tmp_path):
    record_service_urls(tmp_path, {"REDIS_URL": "redis://127.0.0.1:1/0"})
    assert (tmp_path / "services.json").stat().st_mode & 0o077 == 0
    assert recorded_service_urls(tmp_path) == {"REDIS_URL": "redis://127.0.0.1:1/0"}

    forget_service_urls(tmp_path)

    assert not (tmp_path / "services.json").exists()
