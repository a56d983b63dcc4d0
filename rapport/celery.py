import contextlib
import copy
import gc
import os
import warnings
from logging.config import dictConfig

from celery import Celery
from celery.signals import (
    setup_logging,
    task_postrun,
    task_prerun,
    worker_process_init,
    worker_process_shutdown,
)

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rapport.settings")

if os.environ.get("RAPPORT_STARTED_BY_UP"):
    # `make run` on a laptop or in a container often runs as root; the warning is meant for
    # production workers, and in `up`'s output it buries the logins.
    warnings.filterwarnings("ignore", message="You're running the worker with superuser")


class RapportCelery(Celery):
    def prepare_config(self, c):
        """Celery reads its settings from a plain dict of Django's `CELERY_*` settings, taken
        when Celery first needs them (Django's settings are ready by then), instead of looking
        each one up in Django's settings object on every use: a task sent looked up about a
        dozen, most of them misses answered with an AttributeError, a fifth of a publish's CPU.
        """
        return {name: c[name] for name in c if name.startswith("CELERY_")}


app = RapportCelery("rapport")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@task_prerun.connect
def check_database_connection_before_task(**kwargs) -> None:
    """What Django does before each request, before each task: the next query checks the
    connection kept (CONN_HEALTH_CHECKS) if it sat idle. A connection past CONN_MAX_AGE was
    already renewed after the last task (below): renewed here, the caller whose event this task
    applies would wait for the connect, the first caller after every quiet minute."""
    from django.db import connection

    connection.health_check_done = False


@task_postrun.connect
def renew_database_connection_after_task(**kwargs) -> None:
    """What Django does after each request, after each task: a connection past CONN_MAX_AGE,
    left in a transaction or broken by an error is closed. A new one is opened at once, while
    no caller waits. Celery's own fixup is told to keep connections (CELERY_DB_REUSE_MAX in
    settings), so a task does not pay for a new one."""
    from django.db import DatabaseError, close_old_connections, connection

    close_old_connections()
    if connection.connection is None:
        with contextlib.suppress(DatabaseError):
            connection.ensure_connection()


@worker_process_init.connect
def warm_up_and_freeze_what_the_worker_loaded(**kwargs) -> None:
    """Open what the first task would open (rapport.warm_up). Then, as the ASGI server does at
    startup (rapport.asgi): what a pool process loaded is moved to the garbage collector's
    permanent generation, so a full collection in the middle of a routing (tens of
    milliseconds on Django's import graph) walks only what tasks made."""
    from rapport.warm_up import warm_worker_process

    warm_worker_process()
    gc.collect()
    gc.freeze()


@worker_process_shutdown.connect
def send_queued_screen_messages(**kwargs) -> None:
    """A task's screen messages go out after it returns (infrastructure.broadcast): a pool process
    that stops sends what it queued before it exits."""
    from infrastructure import broadcast

    broadcast.flush(timeout=5)


@worker_process_shutdown.connect
def stop_counting_this_process(pid: int | None = None, **kwargs) -> None:
    """A pool process's live gauges no longer count once it exits (infrastructure.metrics)."""
    from infrastructure.metrics import process_exited

    process_exited(pid)


@setup_logging.connect
def log_through_django_settings(logfile: str | None = None, **kwargs) -> None:
    """Workers and beat log as the web server does (LOG_LEVEL, the card-number filter, Celery's
    per-task lines off) instead of Celery's own root-logger setup; `--logfile` still chooses
    where the lines go. The level is LOG_LEVEL's, not `--loglevel`'s: one knob for every process.
    """
    from django.conf import settings

    config = copy.deepcopy(settings.LOGGING)
    if logfile:
        config["handlers"]["console"] = {
            **config["handlers"]["console"],
            "class": "logging.FileHandler",
            "filename": logfile,
        }
    dictConfig(config)
