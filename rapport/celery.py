import copy
import os
import warnings
from logging.config import dictConfig

from celery import Celery
from celery.signals import setup_logging

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rapport.settings")

if os.environ.get("RAPPORT_STARTED_BY_UP"):
    # `make run` on a laptop or in a container often runs as root; the warning is meant for
    # production workers, and in `up`'s output it buries the logins.
    warnings.filterwarnings("ignore", message="You're running the worker with superuser")

app = Celery("rapport")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


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
