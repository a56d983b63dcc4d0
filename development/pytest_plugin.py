"""pytest plugin: give the test run a real PostgreSQL and Redis before Django loads settings.

With DATABASE_URL / REDIS_URL set, those servers are used. Without them, embedded servers start
under `.rapport/test/` (apart from the ones `manage.py up` uses) and stop when the run ends;
RAPPORT_TEST_INSTANCE names another folder, so two test runs on one machine keep apart.
"""

import contextlib
import os

import pytest

from development.embedded import embedded_services
from infrastructure.paths import RUNTIME_DIR

_services = contextlib.ExitStack()


@pytest.hookimpl(wrapper=True)
def pytest_load_initial_conftests(early_config, parser, args):
    urls = _services.enter_context(
        embedded_services(RUNTIME_DIR / os.environ.get("RAPPORT_TEST_INSTANCE", "test"))
    )
    os.environ.update(urls)
    # The tests and every server they start serve plain HTTP with the development key.
    os.environ.setdefault("RAPPORT_DEVELOPMENT", "1")
    return (yield)


def pytest_unconfigure(config):
    _services.close()
