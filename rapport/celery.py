import os
import warnings

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rapport.settings")

if os.environ.get("RAPPORT_STARTED_BY_UP"):
    # `make run` on a laptop or in a container often runs as root; the warning is meant for
    # production workers, and in `up`'s output it buries the logins.
    warnings.filterwarnings("ignore", message="You're running the worker with superuser")

app = Celery("rapport")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
