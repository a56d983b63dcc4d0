"""Where a running `manage.py up` keeps its embedded PostgreSQL and Redis, for other commands.

`up` records the URLs of the servers it started in `.rapport/dev/services.json`, with its own
process id; settings read them when DATABASE_URL / REDIS_URL are unset, so `manage.py shell`,
`createsuperuser` or `simulate` in a second terminal use the same data. A record whose `up` is
gone is ignored. Standard library only: settings import this before Django is set up.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

RECORD_NAME = "services.json"
SERVICE_VARIABLES = ("DATABASE_URL", "REDIS_URL")

NOTHING_RUNNING = (
    "Rapport's database and Redis are not running: start `make run` in another terminal "
    "(every manage.py command then uses its embedded PostgreSQL and Redis), "
    "or set DATABASE_URL and REDIS_URL."
)


def record_path(state_dir: Path) -> Path:
    return Path(state_dir) / RECORD_NAME


def record_service_urls(state_dir: Path, urls: dict[str, str]) -> None:
    state_dir = Path(state_dir)
    state_dir.mkdir(parents=True, exist_ok=True)
    temporary = state_dir / f".{RECORD_NAME}.{os.getpid()}"
    # Written whole then renamed: a command starting meanwhile reads the old record or the new.
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as record:
        json.dump({"pid": os.getpid(), **urls}, record)
    temporary.replace(record_path(state_dir))


def forget_service_urls(state_dir: Path) -> None:
    path = record_path(state_dir)
    with contextlib.suppress(FileNotFoundError, ValueError, OSError):
        if json.loads(path.read_text()).get("pid") == os.getpid():
            path.unlink()


def recorded_service_urls(state_dir: Path) -> dict[str, str]:
    """The URLs a live `up` recorded, or nothing."""
    try:
        record = json.loads(record_path(state_dir).read_text())
        pid = int(record["pid"])
    except (FileNotFoundError, ValueError, KeyError, TypeError, OSError):
        return {}
    if not process_is_alive(pid):
        return {}
    return {name: record[name] for name in SERVICE_VARIABLES if isinstance(record.get(name), str)}


def process_is_alive(pid: int) -> bool:
    """A live process (a zombie, which still answers kill(0), is not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(OSError):
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0]
        return state != "Z"
    return True


def unreachable_service_message(error: BaseException, url_sources: dict[str, str]) -> str | None:
    """One line for a command that failed only because the database or Redis is not there.

    `url_sources` says, per variable, where the URL came from: "environment", "make run" or
    "default" (nothing set, nothing recorded).
    """
    service = _unreachable_service(error)
    if service is None:
        return None
    variable = "DATABASE_URL" if service == "database" else "REDIS_URL"
    source = url_sources.get(variable, "default")
    if source == "default":
        return NOTHING_RUNNING
    if source == "make run":
        return (
            f"The {service} that `make run` started does not answer; restart `make run`, "
            f"or set {variable}."
        )
    return f"Cannot reach the {service} at {variable}: {_first_line(error, service)}"


def _unreachable_service(error: BaseException) -> str | None:
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        kind = f"{type(current).__module__}.{type(current).__qualname__}"
        # Deadlocks and the like are operational errors too; only a failed connect is ours.
        database_errors = ("django.db.utils.OperationalError", "psycopg.OperationalError")
        if kind in database_errors and "connect" in str(current).lower():
            return "database"
        if kind.startswith("redis.exceptions.") and "Connection" in kind:
            return "Redis"
        if kind == "kombu.exceptions.OperationalError":
            return "Redis"
        current = current.__cause__ or current.__context__
    return None


def _first_line(error: BaseException, service: str) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else f"the {service} refused the connection"
