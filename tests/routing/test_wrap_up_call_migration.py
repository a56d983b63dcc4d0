"""routing 0006 points each agent already in wrap-up at the call they were wrapping up as it was
read before: their call that ended last. Nobody else wraps anything up."""

from datetime import timedelta

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

BEFORE = [("routing", "0005_decision_reason_not_ready_wording")]
AFTER = [("routing", "0006_agent_wrap_up_call")]


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("latest_migrations_after")
def test_agents_in_wrap_up_are_given_the_call_that_ended_last():
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    old = executor.loader.project_state(BEFORE).apps
    User = old.get_model("auth", "User")
    Agent = old.get_model("routing", "Agent")
    Call = old.get_model("routing", "Call")
    now = timezone.now()
    agents = {
        name: Agent.objects.create(
            user=User.objects.create(username=name),
            display_name=name,
            telephony_identity=name,
            status=status,
        )
        for name, status in [("dana", "wrap_up"), ("lee", "available")]
    }
    for n, (agent, ended_minutes_ago) in enumerate(
        [("dana", 60), ("dana", 2), ("dana", None), ("lee", 1)]
    ):
        Call.objects.create(
            telephony_call_id=f"CA{n}",
            agent=agents[agent],
            state="ended" if ended_minutes_ago else "connected",
            ended_at=now - timedelta(minutes=ended_minutes_ago) if ended_minutes_ago else None,
        )

    executor = MigrationExecutor(connection)
    executor.migrate(AFTER)
    Agent = executor.loader.project_state(AFTER).apps.get_model("routing", "Agent")

    wrapping_up = dict(Agent.objects.values_list("display_name", "wrap_up_call__telephony_call_id"))
    assert wrapping_up == {"dana": "CA1", "lee": None}
