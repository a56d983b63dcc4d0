"""routing 0007 gives every queue already there the default wrap-up codes, none required, and
leaves every call without a code."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [("routing", "0006_agent_wrap_up_call")]
AFTER = [("routing", "0007_wrap_up_codes")]


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("latest_migrations_after")
def test_queues_already_there_get_the_default_codes():
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    old = executor.loader.project_state(BEFORE).apps
    for slug in ("loyalty", "vip"):
        queue = old.get_model("routing", "Queue").objects.create(slug=slug, name=slug.title())
        old.get_model("routing", "Call").objects.create(telephony_call_id=f"CA-{slug}", queue=queue)

    executor = MigrationExecutor(connection)
    executor.migrate(AFTER)
    new = executor.loader.project_state(AFTER).apps

    codes = new.get_model("routing", "WrapUpCode").objects.order_by("queue__slug", "key")
    assert [(c.queue.slug, c.key, c.label, c.promises_call_back) for c in codes] == [
        (slug, key, label, promises)
        for slug in ("loyalty", "vip")
        for key, label, promises in [
            (1, "Exchange arranged", False),
            (2, "Refund", False),
            (3, "Question answered", False),
            (4, "Call back promised", True),
        ]
    ]
    assert not new.get_model("routing", "Queue").objects.filter(wrap_up_code_required=True).exists()
    assert set(
        new.get_model("routing", "Call").objects.values_list("wrap_up_label", flat=True)
    ) == {""}
