"""The ASGI server's process, and each Celery pool process, hands what it loaded at startup to
the garbage collector's permanent generation, so full collections (which stop every socket, or
a routing) do not walk it."""

import subprocess
import sys

from django.conf import settings


def test_loading_the_asgi_application_freezes_what_startup_made():
    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            "import gc, rapport.asgi; print(gc.get_freeze_count())",
        ],
        capture_output=True,
        text=True,
        cwd=settings.BASE_DIR,
        timeout=60,
    )

    assert loaded.returncode == 0, loaded.stderr
    assert int(loaded.stdout.split()[-1]) > 50_000


def test_a_celery_pool_process_freezes_what_it_loaded():
    started = subprocess.run(
        [
            sys.executable,
            "-c",
            "import gc, django; django.setup(); from celery.signals import worker_process_init;"
            " import rapport.celery; worker_process_init.send(sender=None);"
            " print(gc.get_freeze_count())",
        ],
        capture_output=True,
        text=True,
        cwd=settings.BASE_DIR,
        timeout=60,
    )

    assert started.returncode == 0, started.stderr
    assert int(started.stdout.split()[-1]) > 50_000
