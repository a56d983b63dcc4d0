"""Django set up in the bench's own process, against the database `bench/goals.py` filled
(`.rapport/bench-goals`): for the profiling scripts, which call Rapport's code directly."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager

from development.embedded import embedded_services
from infrastructure.paths import RUNTIME_DIR


@contextmanager
def on_bench_database(name: str, **settings: str) -> Iterator[dict[str, str]]:
    """Django ready, on goals.py's database; the tasks it publishes and the socket messages it
    sends go to a Celery queue and a channel prefix called `name`, which nothing consumes.
    `settings`: more environment for Django's settings."""
    with embedded_services(RUNTIME_DIR / "bench-goals") as urls:
        os.environ.update(urls)
        os.environ.update(
            DJANGO_SETTINGS_MODULE="rapport.settings",
            DEBUG="0",
            LOG_LEVEL="WARNING",
            CELERY_QUEUE=name,
            CHANNELS_PREFIX=name,
            **settings,
        )
        os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(50))
        import django

        django.setup()
        yield urls
