import json
from datetime import timedelta
from html.parser import HTMLParser

import pytest
from django.contrib.auth.models import Group, User
from django.utils import timezone

from customers.models import ContextAccess
from routing.models import Call, Offer

pytestmark = pytest.mark.django_db


class ScriptAudit(HTMLParser):
    """Collects what a Content-Security-Policy without 'unsafe-inline' would block."""

    def __init__(self) -> None:
        super().__init__()
        self.inline_scripts: list[str] = []
        self.inline_handlers: list[str] = []
        self.json_blocks: dict[str, str] = {}
        self._in_script: dict | None = None

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        self.inline_handlers += [name for name in attributes if name.startswith("on")]
        if tag == "script":
            self._in_script = attributes

    def handle_data(self, data):
        if self._in_script is None or not data.strip():
            return
        if self._in_script.get("type") == "application/json":
            self.json_blocks[self._in_script.get("id", "")] = data
        else:
            self.inline_scripts.append(data)

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_script = None


def audit(html: str) -> ScriptAudit:
    parser = ScriptAudit()
    parser.feed(html)
    return parser


def test_it_sends_a_visitor_to_the_login_page(client):
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=/")


def test_it_shows_the_console_to_an_agent(client, make_agent):
    agent = make_agent("dana", status="break")
    client.force_login(agent.user)

    response = client.get("/")

    html = response.content.decode()
    assert response.status_code == 200
    assert 'data-set-status="available"' in html
    assert 'data-set-status="break" aria-checked="true"' in html
    assert '<script type="module" src="/static/console/console.js">' in html
    assert "Accept the ringing call" in html  # the keyboard shortcuts are on screen
    config = json.loads(audit(html).json_blocks["console-config"])
    assert config["agent"] == {
        "id": agent.id,
        "display_name": "Dana",
        "status": "break",
        "not_ready_reason": "",
        "status_label": "Not ready",
    }
    assert config["socket_path"] == "/ws/agent/"
    assert config["csrf_token"]


def test_it_has_no_inline_script_or_event_handler(client, make_agent):
    client.force_login(make_agent().user)
    for page in (client.get("/"), client.get("/accounts/login/")):
        found = audit(page.content.decode())
        assert found.inline_scripts == []
        assert found.inline_handlers == []


def test_the_config_block_cannot_close_its_script_tag(client, make_agent):
    agent = make_agent("dana")
    agent.display_name = "</script><script>alert(1)</script>"
    agent.save()
    client.force_login(agent.user)

    found = audit(client.get("/").content.decode())

    assert found.inline_scripts == []
    config = json.loads(found.json_blocks["console-config"])
    assert config["agent"]["display_name"] == "</script><script>alert(1)</script>"


def test_it_tells_a_login_without_an_agent_profile_what_is_wrong(client):
    user = User.objects.create_user(username="morgan", password="pw")
    client.force_login(user)

    response = client.get("/")

    html = response.content.decode()
    assert response.status_code == 200
    assert "You are not set up as an agent" in html
    assert "console.js" not in html
    assert "console-config" not in html


@pytest.mark.parametrize("role", ["supervisor", "staff"])
def test_a_supervisor_or_staff_without_an_agent_profile_lands_on_the_dashboard(client, role):
    user = User.objects.create_user(username="morgan", password="pw", is_staff=role == "staff")
    if role == "supervisor":
        user.groups.add(Group.objects.get_or_create(name="supervisor")[0])

    response = client.post(
        "/accounts/login/", {"username": "morgan", "password": "pw"}, follow=True
    )

    assert response.redirect_chain[-1][0] == "/supervisor/"
    assert response.status_code == 200
    assert "My console" not in response.content.decode()


def test_a_supervisor_who_is_also_an_agent_sees_links_both_ways(client, make_agent):
    dana = make_agent("dana")
    dana.user.groups.add(Group.objects.get_or_create(name="supervisor")[0])
    client.force_login(dana.user)

    console = client.get("/")
    dashboard = client.get("/supervisor/")

    assert console.status_code == 200
    assert 'href="/supervisor/"' in console.content.decode()
    assert 'href="/">My console</a>' in dashboard.content.decode()


def test_logging_out_is_a_post_with_a_csrf_token(client, make_agent):
    client.force_login(make_agent().user)
    html = client.get("/").content.decode()
    assert 'method="post" action="/accounts/logout/"' in html
    assert 'name="csrfmiddlewaretoken"' in html


# "Who am I speaking with?": the agent picks one of the customers sharing the number.

SHARED = "+14155550142"


@pytest.fixture
def shared_line_call(make_agent, make_customer, queue):
    dana = make_agent("dana", status="available")
    maya = make_customer("Maya Chen", phones=[SHARED])
    leo = make_customer("Leo Chen", phones=[SHARED])
    call = Call.objects.create(
        telephony_call_id="CA-shared", from_number=SHARED, from_e164=SHARED, queue=queue
    )
    call.candidates.set([maya, leo])
    Offer.objects.create(call=call, agent=dana, expires_at=timezone.now() + timedelta(seconds=15))
    return {"call": call, "dana": dana, "maya": maya, "leo": leo}


def choose(client, call_id, customer_id):
    return client.post(
        f"/api/calls/{call_id}/caller/",
        {"customer_id": customer_id},
        content_type="application/json",
    )


def test_the_agent_offered_a_shared_line_call_says_who_is_calling(client, shared_line_call):
    client.force_login(shared_line_call["dana"].user)

    response = choose(client, "CA-shared", shared_line_call["leo"].id)

    assert response.status_code == 200, response.content
    assert response.json()["customer_id"] == shared_line_call["leo"].id
    assert "caller" in response.json()
    shared_line_call["call"].refresh_from_db()
    assert shared_line_call["call"].customer == shared_line_call["leo"]


def test_choosing_the_caller_is_recorded_in_the_access_log_with_few_queries(
    client, shared_line_call, django_assert_max_num_queries
):
    client.force_login(shared_line_call["dana"].user)

    with django_assert_max_num_queries(12):
        assert choose(client, "CA-shared", shared_line_call["maya"].id).status_code == 200

    access = ContextAccess.objects.get(customer=shared_line_call["maya"])
    assert (access.user, access.reason, access.call_id) == (
        shared_line_call["dana"].user,
        "offer",
        shared_line_call["call"].id,
    )


def test_another_agent_cannot_say_who_is_on_someone_elses_call(
    client, shared_line_call, make_agent
):
    client.force_login(make_agent("sam").user)

    response = choose(client, "CA-shared", shared_line_call["maya"].id)

    assert response.status_code == 403
    shared_line_call["call"].refresh_from_db()
    assert shared_line_call["call"].customer is None


def test_only_a_customer_on_the_callers_number_can_be_chosen(
    client, shared_line_call, make_customer
):
    stranger = make_customer("Someone Else", phones=["+14155559999"])
    client.force_login(shared_line_call["dana"].user)

    response = choose(client, "CA-shared", stranger.id)

    assert response.status_code == 400
    assert "customer_id" in response.json()["errors"]
    shared_line_call["call"].refresh_from_db()
    assert shared_line_call["call"].customer is None


def test_choosing_the_caller_names_bad_input(client, shared_line_call):
    client.force_login(shared_line_call["dana"].user)
    assert choose(client, "CA-missing", shared_line_call["maya"].id).status_code == 404
    response = choose(client, "CA-shared", "maya")
    assert response.status_code == 400
    assert "customer_id" in response.json()["errors"]


def test_a_login_without_an_agent_profile_cannot_choose_the_caller(client, shared_line_call):
    client.force_login(User.objects.create_user(username="morgan", password="pw"))
    assert choose(client, "CA-shared", shared_line_call["maya"].id).status_code == 403


def console_config(response) -> dict:
    return json.loads(audit(response.content.decode()).json_blocks["console-config"])


def test_with_a_softphone_the_page_may_connect_to_its_pbx_and_knows_where_to_ask(
    client, make_agent, settings
):
    settings.SOFTPHONE_SHARED_SECRET = "softphone-page-secret-8c2f1a7e5d"
    settings.SOFTPHONE_WEBSOCKET_URL = "wss://pbx.example.com:7443/sip"
    settings.SOFTPHONE_SIP_DOMAIN = "rapport.example.com"
    client.force_login(make_agent("dana").user)

    response = client.get("/")

    assert console_config(response)["softphone_url"] == "/api/softphone/"
    directives = dict(
        (part.split()[0], part.split()[1:])
        for part in response["Content-Security-Policy"].split("; ")
    )
    assert directives["connect-src"] == ["'self'", "wss://pbx.example.com:7443"]
    assert directives["script-src"] == ["'self'"]


def test_without_a_softphone_the_page_asks_for_none_and_connects_only_home(
    client, make_agent, settings
):
    settings.SOFTPHONE_WEBSOCKET_URL = ""
    client.force_login(make_agent("dana").user)

    response = client.get("/")

    assert console_config(response)["softphone_url"] is None
    assert "connect-src 'self';" in response["Content-Security-Policy"]
