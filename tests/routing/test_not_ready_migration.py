"""routing 0004 gives the breaks taken before reasons existed one: `missed_call` where the router
took the agent out after an unanswered offer, else `break`."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

BEFORE = [("routing", "0003_hold_preference_waits")]
AFTER = [("routing", "0004_not_ready_reason")]


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("latest_migrations_after")
def test_breaks_before_reasons_get_one():
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    old = executor.loader.project_state(BEFORE).apps
    User = old.get_model("auth", "User")
    Agent = old.get_model("routing", "Agent")
    AgentStatusChange = old.get_model("routing", "AgentStatusChange")
    now = timezone.now()
    agents = {}
    for name, status in [("dana", "break"), ("sam", "break"), ("lee", "available")]:
        agents[name] = Agent.objects.create(
            user=User.objects.create(username=name),
            display_name=name,
            telephony_identity=name,
            status=status,
        )
    AgentStatusChange.objects.create(
        agent=agents["dana"], status="break", previous_status="available", reason="set_by_agent"
    )
    AgentStatusChange.objects.create(
        agent=agents["sam"],
        status="break",
        previous_status="available",
        reason="offer_timed_out",
        changed_at=now,
    )
    AgentStatusChange.objects.create(
        agent=agents["lee"], status="available", previous_status="break", reason="set_by_agent"
    )

    executor = MigrationExecutor(connection)
    executor.migrate(AFTER)
    new = executor.loader.project_state(AFTER).apps
    Agent = new.get_model("routing", "Agent")
    AgentStatusChange = new.get_model("routing", "AgentStatusChange")

    reasons = dict(Agent.objects.values_list("display_name", "not_ready_reason"))
    assert reasons == {"dana": "break", "sam": "missed_call", "lee": ""}
    assert dict(
        AgentStatusChange.objects.values_list("agent__display_name", "not_ready_reason")
    ) == {"dana": "break", "sam": "missed_call", "lee": ""}
