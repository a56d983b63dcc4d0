"""Real phone calls through Rapport's own PBX: Kamailio running deploy/kamailio/kamailio.cfg as
shipped asks Rapport's route hint whom to ring, rings baresip phones registered with the
credentials Rapport hands out (GET /api/softphone/), relays real RTP, and tells Rapport what
happens in Generic CTI: the agent's console socket gets the ringing card, the call is answered by
the agent whose phone answered, the agent wraps up. All in the test's own network namespace
(tests/support/sip.py); one Rapport web server and one PBX serve every scenario."""

from __future__ import annotations

import json
import secrets
import time
from datetime import timedelta

import httpx
import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client
from django.utils import timezone
from rest_framework.authtoken.models import Token
from websockets.sync.client import connect

from routing.models import Agent, Call, Queue
from routing.states import AgentStatus, CallState
from tests.support import sip
from tests.support.routing import wait_until
from tests.support.servers import served

test_in_own_network_namespace = sip.namespace_test(__file__)

pytestmark = [
    *sip.namespace_marks(),
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(120),
]

CTI_TOKEN = secrets.token_urlsafe(32)
SHARED_SECRET = secrets.token_urlsafe(32)
HINT_TOKEN = "pbx-route-hint-" + secrets.token_hex(12)
QUEUE_NUMBER = "+18005550100"
MAYA = "+14155550123"
DANA_TONE, BOB_TONE, CALLER_TONE = 440, 660, 880


@pytest.fixture(scope="module")
def ports():
    return {"sip": sip.free_port(sip.socket.SOCK_DGRAM), "ws": sip.free_port()}


@pytest.fixture(scope="module")
def rapport(django_db_setup, django_db_blocker, ports):
    extra_env = {
        "TELEPHONY_CTI_TOKEN": CTI_TOKEN,
        "SOFTPHONE_SHARED_SECRET": SHARED_SECRET,
        "SOFTPHONE_WEBSOCKET_URL": f"ws://127.0.0.1:{ports['ws']}",
        "SOFTPHONE_SIP_DOMAIN": sip.DOMAIN,
    }
    with django_db_blocker.unblock(), served(with_worker=False, extra_env=extra_env) as servers:
        yield servers


@pytest.fixture(scope="module")
def pbx(rapport, ports):
    with sip.pbx(
        rapport_url=rapport.base_url,
        route_hint_token=HINT_TOKEN,
        cti_token=CTI_TOKEN,
        shared_secret=SHARED_SECRET,
        sip_port=ports["sip"],
        ws_port=ports["ws"],
    ) as the_pbx:
        yield the_pbx


@pytest.fixture
def line(db, pbx, rapport):
    """The queue whose number callers dial, and the PBX's route hint credential."""
    hinting = User.objects.create_user("pbx")
    hinting.user_permissions.add(Permission.objects.get(codename="view_call"))
    Token.objects.create(user=hinting, key=HINT_TOKEN)
    return Queue.objects.create(
        slug="loyalty", name="Loyalty", numbers=[QUEUE_NUMBER], offer_timeout_seconds=6
    )


def agent(name: str, extension: str, queue: Queue, *, status=AgentStatus.AVAILABLE) -> Agent:
    user = User.objects.create_user(username=name, password="pw-" + name)
    from django.contrib.auth.models import Group

    user.groups.add(Group.objects.get_or_create(name="agent")[0])
    the_agent = Agent.objects.create(
        user=user, display_name=name.title(), telephony_identity=extension, status=status
    )
    the_agent.queues.set([queue])
    return the_agent


def softphone_credentials(rapport, the_agent: Agent) -> dict:
    """What the console's softphone registers with: Rapport's answer, Kamailio's check."""
    client = Client()
    client.force_login(the_agent.user)
    response = httpx.get(
        rapport.base_url + "/api/softphone/",
        cookies={"sessionid": client.cookies["sessionid"].value},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    return response.json()


class ConsoleSocket:
    """The agent's console socket on the real web server; the messages it got, as they came."""

    def __init__(self, rapport, the_agent: Agent) -> None:
        client = Client()
        client.force_login(the_agent.user)
        self.socket = connect(
            rapport.base_url.replace("http", "ws") + "/ws/agent/",
            additional_headers={
                "Cookie": f"sessionid={client.cookies['sessionid'].value}",
                "Origin": rapport.base_url,
            },
        ).__enter__()
        self.messages: list[tuple[float, dict]] = []

    def wait_for(self, message_type: str, *, timeout: float = 10) -> tuple[float, dict]:
        deadline = time.monotonic() + timeout
        for at, message in self.messages:
            if message.get("type") == message_type:
                return at, message
        while time.monotonic() < deadline:
            try:
                raw = self.socket.recv(timeout=max(0.01, deadline - time.monotonic()))
            except TimeoutError:
                break
            message = json.loads(raw)
            self.messages.append((time.monotonic(), message))
            if message.get("type") == message_type:
                return self.messages[-1]
        seen = [message.get("type") for _, message in self.messages]
        raise AssertionError(f"no {message_type!r} on the console socket; saw {seen}")

    def close(self) -> None:
        self.socket.close()


def the_call() -> Call:
    return wait_until(lambda: Call.objects.select_related("agent").order_by("-id").first())


def ended() -> Call:
    def call_ended():
        call = Call.objects.select_related("agent").order_by("-id").first()
        return call if call is not None and call.state == CallState.ENDED else None

    return wait_until(call_ended, timeout=10)


def spoke_with(customer_number: str, the_agent: Agent, queue: Queue) -> None:
    from customers.models import Customer, PhoneNumber

    maya = Customer.objects.create(name="Maya Chen")
    PhoneNumber.objects.create(customer=maya, number=customer_number)
    at = timezone.now() - timedelta(days=2)
    Call.objects.create(
        telephony_call_id="earlier-call",
        customer=maya,
        agent=the_agent,
        queue=queue,
        state=CallState.ENDED,
        connected_at=at,
        ended_at=at + timedelta(minutes=3),
    )


def test_the_last_agent_rings_first_answers_and_talks_then_wraps_up(pbx, rapport, line):
    dana = agent("dana", "1001", line)
    agent("bob", "1002", line)
    spoke_with(MAYA, dana, line)
    dana_phone = pbx.phone(
        "1001", tone_hz=DANA_TONE, credentials=softphone_credentials(rapport, dana)
    )
    console = ConsoleSocket(rapport, dana)
    console.wait_for("state")
    caller = pbx.caller(MAYA, tone_hz=CALLER_TONE)

    dialled_at = caller.dial(pbx.sip_uri(QUEUE_NUMBER))
    rang_at, card = console.wait_for("ringing")
    dana_phone.wait_for("CALL_ESTABLISHED")
    caller.wait_for("CALL_ESTABLISHED")
    time.sleep(1.2)
    caller.hangup()
    caller.wait_for("CALL_CLOSED")
    dana_phone.wait_for("CALL_CLOSED")

    print(f"\nINVITE -> ringing card on the agent's socket: {(rang_at - dialled_at) * 1000:.0f} ms")
    assert card["caller"]["customer"]["name"] == "Maya Chen"
    call = ended()
    assert (call.agent, call.end_reason, call.from_number) == (dana, "completed", MAYA)
    assert call.connected_at is not None
    assert Agent.objects.get(id=dana.id).status == AgentStatus.WRAP_UP
    # Media both ways: each side's recording holds the other side's tone.
    assert abs(sip.dominant_hz(caller.heard()) - DANA_TONE) < 40
    assert abs(sip.dominant_hz(dana_phone.heard()) - CALLER_TONE) < 40
    # Her standing for next time: the route hint names her again for Maya.
    hint = httpx.get(
        rapport.base_url + "/api/telephony/route-hint/",
        params={"from": MAYA, "queue": QUEUE_NUMBER},
        headers={"Authorization": f"Token {HINT_TOKEN}"},
        timeout=10,
    ).json()
    assert hint["agent"] == "1001"
    console.close()
