"""The ASGI server's process, and each Celery pool process, hands what it loaded at startup to
the garbage collector's permanent generation, so full collections (which stop every socket, or
a routing) do not walk it."""

import subprocess
import sys

from django.conf import settings


def _objects_frozen_after(code: str) -> int:
    """gc.get_freeze_count() in a fresh interpreter once `code` ran."""
    ran = subprocess.run(
        [sys.executable, "-c", f"import gc; {code}; print(gc.get_freeze_count())"],
        capture_output=True,
        text=True,
        cwd=settings.BASE_DIR,
        timeout=60,
    )
    assert ran.returncode == 0, ran.stderr
    return int(ran.stdout.split()[-1])


def test_loading_the_asgi_application_freezes_what_startup_made():
    assert _objects_frozen_after("import rapport.asgi") > 50_000


def test_a_celery_pool_process_freezes_what_it_loaded():
    started_pool_process = (
        "import django; django.setup(); from celery.signals import worker_process_init;"
        " import rapport.celery; worker_process_init.send(sender=None)"
    )
    assert _objects_frozen_after(started_pool_process) > 50_000
