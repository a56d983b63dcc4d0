"""What the routing tests share beyond tests/conftest.py."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor


@pytest.fixture
def latest_migrations_after():
    """The test database as every other test expects it afterwards: all migrations applied
    (going back to an earlier migration also took back what depends on the later ones)."""
    yield
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())
