"""A supervisor watches a caller arrive, wait and get answered, in headless Chromium."""

import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import Group, User
from django.utils import timezone
from playwright.sync_api import expect

from customers.models import Customer
from infrastructure.broadcast import notify_supervisors
from routing.models import Agent, AgentStatusChange, Call, Queue
from tests.support.browser import SCREENSHOTS, in_a_thread, open_dashboard

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(120),
]

SCREENSHOT = SCREENSHOTS / "supervisor.png"


@pytest.fixture
def team(db):
    loyalty = Queue.objects.create(slug="loyalty", name="Loyalty", numbers=["+18005550100"])
    Queue.objects.create(slug="vip", name="VIP line", numbers=["+18005550199"])
    agent_group = Group.objects.get_or_create(name="agent")[0]
    agents = {}
    for username, status in [("dana", "available"), ("sam", "break")]:
        user = User.objects.create_user(username=username, password="pw-" + username)
        user.groups.add(agent_group)
        agent = Agent.objects.create(
            user=user, display_name=username.title(), telephony_identity=username, status=status
        )
        agent.queues.set([loyalty])
        agents[username] = agent
    supervisor = User.objects.create_user(username="morgan", password="pw-morgan-9")
    supervisor.groups.add(Group.objects.get_or_create(name="supervisor")[0])
    maya = Customer.objects.create(name="Maya Chen", consent="open")
    return {"queue": loyalty, "agents": agents, "maya": maya}


def text(page, selector: str) -> str:
    return page.locator(selector).first.text_content().strip()


def test_a_supervisor_watches_a_call_arrive_wait_and_get_answered(
    web_server,
    chromium,
    team,
):
    context, page, errors = open_dashboard(chromium, web_server.base_url, "morgan", "pw-morgan-9")
    card = page.locator('[data-queue="loyalty"]')
    assert text(page, "[data-total=waiting]") == "0"
    assert card.locator("[data-count=available]").text_content() == "1"
    frames_before = int(page.locator("#supervisor").get_attribute("data-frames"))

    def a_caller_reaches_the_queue():
        call = Call.objects.create(
            telephony_call_id="CA-browser-1",
            queue=team["queue"],
            customer=team["maya"],
            from_number="+14155550123",
            state="queued",
            queued_at=timezone.now() - timedelta(seconds=3),
        )
        notify_supervisors(queue_id=call.queue_id)
        return call

    call = in_a_thread(a_caller_reaches_the_queue)

    expect(page.locator("[data-total=waiting]")).to_have_text("1")
    waiting_row = card.locator('[data-call="CA-browser-1"]')
    waiting_row.wait_for()
    assert int(page.locator("#supervisor").get_attribute("data-frames")) > frames_before
    # The wait ticks in the browser, from the start timestamp, with no further frames.
    first = waiting_row.locator(".sv-wait").text_content()
    assert re.fullmatch(r"0:0[0-9]", first), first
    expect(waiting_row.locator(".sv-wait")).not_to_have_text(first)
    assert text(page, "[data-total=longest]") != "–"

    def dana_answers():
        dana = team["agents"]["dana"]
        Call.objects.filter(id=call.id).update(
            state="connected", agent=dana, connected_at=timezone.now()
        )
        Agent.objects.filter(id=dana.id).update(status="busy", status_changed_at=timezone.now())
        notify_supervisors(queue_id=call.queue_id, agent_id=dana.id)

    in_a_thread(dana_answers)

    expect(page.locator("[data-total=waiting]")).to_have_text("0")
    waiting_row.wait_for(state="detached")
    dana_row = page.locator(f'[data-agent="{team["agents"]["dana"].id}"]')
    expect(dana_row.locator(".sv-caller")).to_have_text("Maya Chen")
    assert dana_row.locator(".sv-status-label").text_content() == "On a call"
    assert text(page, "[data-total=answered]") == "1"
    assert card.locator("[data-day=answered]").text_content() == "1"
    assert card.locator("[data-day=service_level]").text_content() == "100%"
    assert card.locator("[data-count=busy]").text_content() == "1"
    # No handle-time figure anywhere on the page.
    assert "handle" not in page.content().lower()

    # The supervisor sends Sam, stuck on break, offline: audited, and the wall shows it.
    sam_row = page.locator(f'[data-agent="{team["agents"]["sam"].id}"]')
    sam_row.locator("select").select_option("offline")
    sam_row.get_by_role("button", name="Set").click()
    expect(page.locator("[data-notice]")).to_have_text("Sam set to Offline.")
    expect(sam_row.locator(".sv-status-label")).to_have_text("Offline")
    change = in_a_thread(
        lambda: AgentStatusChange.objects.select_related("changed_by").get(
            agent_id=team["agents"]["sam"].id
        )
    )
    assert (change.status, change.changed_by.username) == ("offline", "morgan")

    context.close()
    assert errors == []


def test_a_supervisor_ends_the_call_the_phone_system_forgot_and_the_agent_wraps_up(
    web_server, chromium, team
):
    dana = team["agents"]["dana"]

    def dana_on_a_call_whose_hang_up_never_comes():
        call = Call.objects.create(
            telephony_call_id="CA-forgotten",
            queue=team["queue"],
            customer=team["maya"],
            agent=dana,
            state="connected",
            queued_at=timezone.now() - timedelta(seconds=12),
            connected_at=timezone.now() - timedelta(seconds=10),
        )
        Call.objects.filter(id=call.id).update(created_at=call.queued_at)
        Agent.objects.filter(id=dana.id).update(status="busy", status_changed_at=timezone.now())

    in_a_thread(dana_on_a_call_whose_hang_up_never_comes)
    context, page, errors = open_dashboard(chromium, web_server.base_url, "morgan", "pw-morgan-9")
    dana_row = page.locator(f'[data-agent="{dana.id}"]')
    sam_row = page.locator(f'[data-agent="{team["agents"]["sam"].id}"]')
    end_call = dana_row.get_by_role("button", name="End the call the phone system forgot")
    expect(end_call).to_be_visible()
    expect(
        sam_row.get_by_role("button", name="End the call the phone system forgot")
    ).to_be_hidden()

    page.once("dialog", lambda dialog: dialog.accept("PBX lost the hang-up"))
    end_call.click()

    expect(page.locator("[data-notice]")).to_have_text("Dana's call CA-forgotten ended as lost.")
    expect(dana_row.locator(".sv-status-label")).to_have_text("Wrap-up")
    expect(end_call).to_be_hidden()
    change = in_a_thread(
        lambda: AgentStatusChange.objects.select_related("changed_by").get(agent_id=dana.id)
    )
    assert (change.status, change.changed_by.username, change.reason) == (
        "wrap_up",
        "morgan",
        "call_ended_by_supervisor: PBX lost the hang-up",
    )
    call = in_a_thread(lambda: Call.objects.get(telephony_call_id="CA-forgotten"))
    assert (call.state, call.end_reason) == ("ended", "lost")
    context.close()
    assert errors == []


def test_an_agent_is_turned_away_from_the_dashboard(
    web_server,
    chromium,
    team,
):
    context = chromium.new_context()
    page = context.new_page()
    page.goto(web_server.base_url + "/accounts/login/?next=/supervisor/")
    page.fill("input[name=username]", "dana")
    page.fill("input[name=password]", "pw-dana")
    with page.expect_response(lambda r: r.url == web_server.base_url + "/supervisor/") as response:
        page.click("button[type=submit]")
    assert response.value.status == 403
    context.close()


@pytest.mark.screenshots
def test_screenshot_of_a_busy_afternoon(
    web_server,
    chromium,
    team,
):
    """Not a behaviour check: draws docs/screenshots/supervisor.png from a constructed day."""
    import random

    from routing.models import DecisionReason, RoutingDecision

    rng = random.Random(6)
    now = timezone.now()
    start = max(
        timezone.localtime(now).replace(hour=0, minute=0, second=0), now - timedelta(hours=9)
    )
    queues = [team["queue"], Queue.objects.get(slug="vip")]
    queues.append(Queue.objects.create(slug="returns", name="Returns", service_level_seconds=30))
    agent_group = Group.objects.get(name="agent")
    names = [
        "Alex Moreau",
        "Priya Raman",
        "Lee Park",
        "Jo Okafor",
        "Ana Silva",
        "Kim Berg",
        "Ravi Shah",
        "Mia Rossi",
        "Tom Wu",
        "Eva Lund",
    ]
    statuses = [
        "available",
        "busy",
        "busy",
        "wrap_up",
        "available",
        "busy",
        "break",
        "offline",
        "busy",
        "available",
    ]
    agents = list(team["agents"].values())
    for name, status in zip(names, statuses, strict=True):
        username = name.split()[0].lower()
        user = User.objects.create_user(username=username, password="x")
        user.groups.add(agent_group)
        agent = Agent.objects.create(
            user=user,
            display_name=name,
            telephony_identity=username,
            status=status,
            status_changed_at=now - timedelta(seconds=rng.randrange(20, 1500)),
            not_ready_reason="lunch" if status == "break" else "",
        )
        agent.queues.set(rng.sample(queues, 2))
        agents.append(agent)
        for minutes_ago, reason in [(130, "coaching"), (95, "lunch"), (50, "missed_call")]:
            began = now - timedelta(minutes=minutes_ago + rng.randrange(0, 15))
            if began < start:
                continue
            AgentStatusChange.objects.create(
                agent=agent,
                status="break",
                previous_status="available",
                changed_at=began,
                not_ready_reason=reason,
            )
            AgentStatusChange.objects.create(
                agent=agent,
                status="available",
                previous_status="break",
                changed_at=began + timedelta(minutes=rng.randrange(3, 30)),
            )
    customers = [
        Customer.objects.create(name=n, consent="conditional" if i % 2 == 0 else "closed")
        for i, n in enumerate(
            ["Grace Kim", "Omar Haddad", "Ruth Adler", "Luis Ortega", "Nora Blake"]
        )
    ]
    for n in range(160):
        queued = start + (now - start - timedelta(minutes=6)) * (n / 160)
        answered = rng.random() > 0.07
        wait = timedelta(seconds=rng.expovariate(1 / 14))
        agent = rng.choice(agents)
        last_agent = rng.choice(agents) if n % 2 == 0 else None
        if last_agent and rng.random() < 0.7:
            agent = last_agent
        call = Call.objects.create(
            telephony_call_id=f"CA-day-{n}",
            queue=rng.choice(queues),
            agent=agent if answered else None,
            last_agent=last_agent,
            state="ended" if answered else "abandoned",
            created_at=queued,
            queued_at=queued,
            connected_at=queued + wait if answered else None,
            ended_at=queued + wait + timedelta(minutes=4),
        )
        if last_agent and rng.random() < 0.4:
            RoutingDecision.objects.create(
                call=call,
                agent=last_agent,
                decided_at=queued,
                reason=rng.choice(
                    [
                        DecisionReason.LAST_AGENT_BUSY_WAITED,
                        DecisionReason.LAST_AGENT_BUSY_WAITED,
                        DecisionReason.LAST_AGENT_BUSY_NOT_HELD,
                    ]
                ),
            )
        if not answered:
            call.from_number = call.from_e164 = f"+1415555{n:04d}"
            call.customer = customers[n % len(customers)] if n % 3 else None
            call.save(update_fields=["from_number", "from_e164", "customer"])
        if last_agent and call.agent_id != last_agent.id and answered:
            RoutingDecision.objects.create(
                call=call,
                agent=last_agent,
                decided_at=queued,
                reason=rng.choice(
                    [
                        DecisionReason.LAST_AGENT_WAIT_EXPIRED,
                        DecisionReason.LAST_AGENT_UNAVAILABLE,
                        DecisionReason.OFFER_TIMED_OUT,
                    ]
                ),
            )
    talking = [a for a in agents if a.status == "busy"]
    for index, agent in enumerate(talking):
        Call.objects.create(
            telephony_call_id=f"CA-now-{index}",
            queue=queues[index % 3],
            agent=agent,
            customer=customers[index % len(customers)],
            state="connected",
            queued_at=now - timedelta(minutes=3),
            connected_at=now - timedelta(minutes=2),
        )
    for index, seconds in enumerate([74, 41, 18, 6]):
        call = Call.objects.create(
            telephony_call_id=f"CA-wait-{index}",
            queue=queues[index % 2],
            state="offered" if index == 2 else "queued",
            queued_at=now - timedelta(seconds=seconds),
            last_agent=agents[1] if index == 1 else None,
            last_agent_wait_until=now + timedelta(seconds=20) if index == 1 else None,
        )

    context, page, errors = open_dashboard(
        chromium, web_server.base_url, "morgan", "pw-morgan-9", width=1600
    )
    page.wait_for_timeout(1200)
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOT), full_page=True)
    context.close()
    assert errors == []


def test_a_dashboard_signed_out_elsewhere_says_so_and_stops_reconnecting(
    web_server,
    chromium,
    team,
):
    context, page, errors = open_dashboard(chromium, web_server.base_url, "morgan", "pw-morgan-9")
    opened: list[str] = []
    page.on("websocket", lambda socket: opened.append(socket.url))

    elsewhere = context.new_page()
    elsewhere.goto(web_server.base_url + "/supervisor/")
    elsewhere.get_by_role("button", name="Log out").click()
    elsewhere.wait_for_url("**/accounts/login/")

    link = page.locator("[data-link-state]")
    expect(link).to_have_attribute("data-link-state", "refused")
    expect(link).to_have_text("Signed out — reload the page")
    page.wait_for_timeout(2000)  # past the first retry's back-off: there is none
    assert opened == []
    context.close()
    assert errors == []
