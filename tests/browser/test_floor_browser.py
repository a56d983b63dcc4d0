"""The floor's states in headless Chromium: an agent goes not ready for lunch on the console and
the supervisor's wall says so live; the wall lists today's abandoned callers, one is marked called
back; the last week's reunion table per queue and per agent."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import Group, User
from django.utils import timezone
from playwright.sync_api import expect

from customers.models import Customer
from routing.models import Agent, AgentStatusChange, Call, DecisionReason, Queue, RoutingDecision
from supervisor.models import CallBack
from tests.support.browser import in_a_thread, open_dashboard

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(120),
]


@pytest.fixture
def floor(db):
    loyalty = Queue.objects.create(
        slug="loyalty", name="Loyalty", numbers=["+18005550100"], last_agent_wait_seconds=25
    )
    agent_group = Group.objects.get_or_create(name="agent")[0]
    agents = {}
    now = timezone.now()
    for username in ("dana", "sam"):
        user = User.objects.create_user(username=username, password="pw-" + username)
        user.groups.add(agent_group)
        agent = Agent.objects.create(
            user=user, display_name=username.title(), telephony_identity=username
        )
        agent.queues.set([loyalty])
        agents[username] = agent
    # Sam went to lunch ten minutes ago (or at midnight, if that was later).
    lunch_began = max(
        now - timedelta(minutes=10), timezone.localtime(now).replace(hour=0, minute=0)
    )
    AgentStatusChange.objects.create(
        agent=agents["sam"],
        status="break",
        previous_status="available",
        changed_at=lunch_began,
        reason="set_by_agent",
        not_ready_reason="lunch",
    )
    Agent.objects.filter(id=agents["sam"].id).update(
        status="break", status_changed_at=lunch_began, not_ready_reason="lunch"
    )
    Agent.objects.filter(id=agents["dana"].id).update(status="available")
    supervisor = User.objects.create_user(username="morgan", password="pw-morgan-9")
    supervisor.groups.add(Group.objects.get_or_create(name="supervisor")[0])
    maya = Customer.objects.create(name="Maya Chen", consent="open")
    hung_up = Call.objects.create(
        telephony_call_id="CA-gave-up",
        queue=loyalty,
        customer=maya,
        from_number="+14155550123",
        from_e164="+14155550123",
        last_agent=agents["dana"],
        state="abandoned",
        created_at=now - timedelta(seconds=80),
        queued_at=now - timedelta(seconds=78),
        ended_at=now - timedelta(seconds=30),
    )
    # The week: four of Dana's returning callers, two held for her, one of whom reached her.
    for n, (agent, reason) in enumerate(
        [
            ("dana", DecisionReason.LAST_AGENT_BUSY_WAITED),
            ("sam", DecisionReason.LAST_AGENT_BUSY_WAITED),
            ("sam", DecisionReason.LAST_AGENT_BUSY_NOT_HELD),
            ("dana", DecisionReason.LAST_AGENT),
        ]
    ):
        created = now - timedelta(days=n + 1)
        call = Call.objects.create(
            telephony_call_id=f"CA-week-{n}",
            queue=loyalty,
            last_agent=agents["dana"],
            agent=agents[agent],
            state="ended",
            created_at=created,
            queued_at=created,
            connected_at=created + timedelta(seconds=20),
            ended_at=created + timedelta(minutes=4),
        )
        RoutingDecision.objects.create(call=call, reason=reason, decided_at=created)
    return {"agents": agents, "hung_up": hung_up}


def test_reasons_the_abandoned_list_and_the_week_table_on_the_wall(
    web_server,
    chromium,
    floor,
):
    context, page, errors = open_dashboard(chromium, web_server.base_url, "morgan", "pw-morgan-9")
    sam_row = page.locator(f'[data-agent="{floor["agents"]["sam"].id}"]')
    dana_row = page.locator(f'[data-agent="{floor["agents"]["dana"].id}"]')

    # Why each agent is not ready, for how long, and today's totals per reason.
    expect(sam_row.locator(".sv-status-label")).to_have_text("Not ready — Lunch")
    expect(sam_row.locator(".sv-not-ready-today")).to_contain_text("Lunch")
    expect(sam_row.locator(".sv-for")).not_to_have_text("–")
    lunch = page.locator('[data-not-ready-reason="lunch"]')
    expect(lunch).to_contain_text("Lunch")
    expect(lunch).to_contain_text("1 now")
    expect(page.locator("[data-agent-summary]")).to_have_text(
        "1 available · 0 on a call · 0 wrap-up · 1 not ready · 0 offline"
    )

    # Why returning callers missed their own agent today, in the server's words: Maya hung up.
    expect(page.locator("[data-reasons] .sv-reason-label")).to_have_text(
        [
            "Agent still busy after the wait",
            "Agent busy; caller not held (avoids holding, in a rush)",
            "Agent offline or not ready",
            "Agent declined",
            "Offer not answered in time",
            "Caller chose the next colleague",
            "Called back by a colleague, or not reached",
            "Caller hung up first",
            "Other (e.g. moved)",
        ]
    )
    expect(page.locator('[data-reason="caller_hung_up"] .sv-reason-n')).to_have_text("1")

    # Dana, on the console, goes not ready for training: the wall shows it live.
    agent_context = chromium.new_context(viewport={"width": 1280, "height": 860})
    agent_context.set_default_timeout(8000)
    agent_page = agent_context.new_page()
    agent_page.goto(web_server.base_url + "/accounts/login/")
    agent_page.fill("input[name=username]", "dana")
    agent_page.fill("input[name=password]", "pw-dana")
    agent_page.click("button[type=submit]")
    agent_page.wait_for_selector('[data-link-state="live"]')
    # The reason picker shows once Not ready is chosen.
    agent_page.locator('[data-set-status="break"]').click()
    agent_page.locator("[data-not-ready-reason]").select_option("training")
    expect(agent_page.locator("[data-status-label]")).to_have_text("Not ready — Training")
    expect(agent_page.locator('[data-set-status="break"]')).to_have_attribute(
        "aria-checked", "true"
    )
    expect(dana_row.locator(".sv-status-label")).to_have_text("Not ready — Training")
    # Changing the reason while not ready is a change of its own.
    agent_page.locator("[data-not-ready-reason]").select_option("coaching")
    expect(agent_page.locator("[data-status-label]")).to_have_text("Not ready — Coaching")
    expect(dana_row.locator(".sv-status-label")).to_have_text("Not ready — Coaching")
    agent_context.close()

    # The supervisor sends Sam from lunch to coaching from the wall.
    sam_row.locator("select").select_option("break:coaching")
    sam_row.get_by_role("button", name="Set").click()
    expect(page.locator("[data-notice]")).to_have_text("Sam set to Not ready — Coaching.")
    expect(sam_row.locator(".sv-status-label")).to_have_text("Not ready — Coaching")
    expect(page.locator('[data-not-ready-reason="coaching"]')).to_contain_text("2 now")

    # Today's abandoned callers: name as consent allows, number, wait, whose caller.
    row = page.locator('[data-abandoned-call="CA-gave-up"]')
    expect(row.locator(".sv-abandoned-caller")).to_have_text("Maya Chen")
    expect(row.locator(".sv-abandoned-number")).to_have_text("+14155550123")
    expect(row).to_contain_text("48 s")
    expect(row).to_contain_text("Dana")
    row.get_by_role("button", name="Mark called back").click()
    expect(row.locator(".sv-called-back")).to_contain_text("Called back by morgan")
    call_back = in_a_thread(lambda: CallBack.objects.select_related("called_back_by").get())
    assert call_back.call_id == floor["hung_up"].id
    assert call_back.called_back_by.username == "morgan"

    # The week's reunion table, per queue and per agent: Maya, who hung up today, was one of
    # Dana's returning callers too.
    loyalty = page.locator('[data-reunion-queue="loyalty"]')
    cells = loyalty.locator("td")
    expect(cells.nth(0)).to_have_text("5")  # returning
    expect(cells.nth(1)).to_have_text("40%")  # reunited: 2 of 5
    expect(cells.nth(2)).to_have_text("2 (40%)")  # waited for
    expect(cells.nth(3)).to_have_text("1 (50%)")  # of whom reached Dana
    expect(cells.nth(4)).to_have_text("1 (20%)")  # sent straight to the queue
    expect(loyalty).to_contain_text("waits 25 s")
    dana_week = page.locator(f'[data-reunion-agent="{floor["agents"]["dana"].id}"] td')
    expect(dana_week.nth(0)).to_have_text("5")

    context.close()
    assert errors == []
