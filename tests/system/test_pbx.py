"""Real phone calls through Rapport's own PBX: Kamailio running deploy/kamailio/kamailio.cfg as
shipped asks Rapport's route hint whom to ring, rings baresip phones registered with the
credentials Rapport hands out (GET /api/softphone/), relays real RTP, and tells Rapport what
happens in Generic CTI: the agent's console socket gets the ringing card, the call is answered by
the agent whose phone answered, the agent wraps up. All in the test's own network namespace
(tests/support/sip.py); one Rapport web server and one PBX serve every scenario."""

from __future__ import annotations

import json
import time

import httpx
import pytest
from django.test import Client
from websockets.sync.client import connect

from routing.models import Agent, Call
from routing.states import AgentStatus
from tests.support import sip, sip_people
from tests.support.routing import wait_until
from tests.support.sip_people import MAYA, QUEUE_NUMBER

test_in_own_network_namespace = sip.namespace_test(__file__)

pytestmark = [
    *sip.namespace_marks(),
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(120),
]

CTI_TOKEN, SHARED_SECRET, HINT_TOKEN = sip.CTI_TOKEN, sip.SHARED_SECRET, sip.HINT_TOKEN
DANA_TONE, BOB_TONE, CALLER_TONE = 440, 660, 880


def softphone_credentials(rapport, the_agent: Agent) -> dict:
    return sip.softphone_credentials(rapport, the_agent.user)


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


def ended(**which) -> Call:
    """The latest call (of those `which` filters), once it ended."""

    def call_ended():
        call = Call.objects.filter(**which).select_related("agent").order_by("-id").first()
        return call if call is not None and call.ended_at is not None else None

    return wait_until(call_ended, timeout=10)


def test_the_last_agent_rings_first_answers_and_talks_then_wraps_up(pbx, rapport, line):
    dana = sip_people.agent("dana", "1001", line)
    sip_people.agent("bob", "1002", line)
    sip_people.spoke_with(MAYA, dana, line)
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


def test_with_the_last_agent_offline_the_queues_other_agent_answers_on_their_phone(
    pbx, rapport, line
):
    dana = sip_people.agent("dana", "2001", line, status=AgentStatus.OFFLINE)
    bob = sip_people.agent("bob", "2002", line)
    sip_people.spoke_with(MAYA, dana, line)
    bob_phone = pbx.phone("2002", tone_hz=BOB_TONE, credentials=softphone_credentials(rapport, bob))
    console = ConsoleSocket(rapport, bob)
    console.wait_for("state")
    caller = pbx.caller(MAYA, tone_hz=CALLER_TONE)

    caller.dial(pbx.sip_uri(QUEUE_NUMBER))
    console.wait_for("ringing")
    bob_phone.wait_for("CALL_ESTABLISHED")
    caller.wait_for("CALL_ESTABLISHED")
    time.sleep(0.6)
    bob_phone.hangup()
    caller.wait_for("CALL_CLOSED")

    call = ended()
    assert (call.agent, call.end_reason) == (bob, "completed")
    assert abs(sip.dominant_hz(caller.heard()) - BOB_TONE) < 40
    console.close()


def test_an_agent_who_declines_is_skipped_and_the_next_agent_gets_the_card(pbx, rapport, line):
    dana = sip_people.agent("dana", "5001", line)
    bob = sip_people.agent("bob", "5002", line)
    sip_people.spoke_with(MAYA, dana, line)
    dana_phone = pbx.phone("5001", answer="manual")
    bob_phone = pbx.phone("5002", tone_hz=BOB_TONE)
    bobs_console = ConsoleSocket(rapport, bob)
    bobs_console.wait_for("state")
    caller = pbx.caller(MAYA)

    caller.dial(pbx.sip_uri(QUEUE_NUMBER))
    dana_phone.wait_for("CALL_INCOMING")
    dana_phone.hangup()  # declines: 486 Busy Here
    bobs_console.wait_for("ringing")
    bob_phone.wait_for("CALL_ESTABLISHED")
    caller.wait_for("CALL_ESTABLISHED")
    caller.hangup()
    caller.wait_for("CALL_CLOSED")

    call = ended()
    assert (call.agent, call.end_reason) == (bob, "completed")
    bobs_console.close()


def test_a_caller_who_hangs_up_while_it_rings_has_abandoned_the_call(pbx, rapport, line):
    dana = sip_people.agent("dana", "4001", line)
    dana_phone = pbx.phone("4001", answer="manual")
    console = ConsoleSocket(rapport, dana)
    console.wait_for("state")
    caller = pbx.caller("+14155550999")

    caller.dial(pbx.sip_uri(QUEUE_NUMBER))
    dana_phone.wait_for("CALL_INCOMING")
    console.wait_for("ringing")
    caller.hangup()
    caller.wait_for("CALL_CLOSED")
    dana_phone.wait_for("CALL_CLOSED")

    _, ended_card = console.wait_for("ringing_ended")
    call = ended()
    assert (call.agent, call.end_reason, call.connected_at) == (None, "abandoned", None)
    assert ended_card["call_id"] == call.telephony_call_id
    console.close()


def test_with_the_route_hint_down_the_queues_agents_ring_at_once(rapport, line):
    """A PBX whose route hint is a closed port: it rings the agents registered there."""
    bob = sip_people.agent("bob", "3002", line)
    with sip.pbx(
        rapport_url=rapport.base_url,
        route_hint_token=HINT_TOKEN,
        cti_token=CTI_TOKEN,
        shared_secret=SHARED_SECRET,
        route_hint_url=f"http://127.0.0.1:{sip.free_port()}",
    ) as hintless:
        bob_phone = hintless.phone("3002", tone_hz=BOB_TONE)
        caller = hintless.caller(MAYA)
        second_caller = hintless.caller("+14155550777")

        dialled_at = caller.dial(hintless.sip_uri(QUEUE_NUMBER))
        answered = bob_phone.wait_for("CALL_ESTABLISHED")
        caller.wait_for("CALL_ESTABLISHED")
        # Bob is on a call here (the PBX's own record, a dialog): not rung for another.
        second_caller.dial(hintless.sip_uri(QUEUE_NUMBER))
        second_caller.wait_for("CALL_CLOSED")
        caller.hangup()
        caller.wait_for("CALL_CLOSED")
        call = ended(from_number=MAYA)

    print(f"\nhint down: INVITE -> answered {(answered['at'] - dialled_at) * 1000:.0f} ms")
    assert (call.agent, call.end_reason) == (bob, "completed")
    assert [event["type"] for event in bob_phone.events].count("CALL_ESTABLISHED") == 1
    assert Call.objects.get(from_number="+14155550777").end_reason == "no-answer"


def test_with_rapport_unreachable_calls_still_connect_and_no_secret_reaches_the_pbx_log():
    """Every request to Rapport fails (the logged kind of failure): the Generic CTI token is in
    the URL those posts go to, and the PBX's log must not show it, nor the other two secrets."""
    with sip.pbx(
        rapport_url=f"http://127.0.0.1:{sip.free_port()}",
        route_hint_token=HINT_TOKEN,
        cti_token=CTI_TOKEN,
        shared_secret=SHARED_SECRET,
    ) as cut_off:
        cut_off.phone("6001")
        caller = cut_off.caller(MAYA)
        caller.dial(cut_off.sip_uri(QUEUE_NUMBER))
        caller.wait_for("CALL_ESTABLISHED")
        caller.hangup()
        caller.wait_for("CALL_CLOSED")
        log = cut_off.logs["kamailio"]
        wait_until(lambda: log.read_text().count("not taken") >= 3)
        text = log.read_text()

    assert "route hint unanswered" in text
    for secret in (CTI_TOKEN, HINT_TOKEN, SHARED_SECRET):
        assert secret not in text


def test_with_nobody_to_ring_the_caller_hears_480_and_rapport_records_no_answer(pbx, line):
    sip_people.agent("dana", "7001", line, status=AgentStatus.OFFLINE)
    caller = pbx.caller(MAYA)

    caller.dial(pbx.sip_uri(QUEUE_NUMBER))
    caller.wait_for("CALL_CLOSED")

    call = ended()
    assert (call.from_number, call.end_reason, call.connected_at) == (MAYA, "no-answer", None)


def test_a_caller_may_only_call_a_queues_number(pbx, line):
    sip_people.agent("dana", "8001", line)
    pbx.phone("8001")
    caller = pbx.caller(MAYA)

    caller.dial(pbx.sip_uri("8001"))
    closed = caller.wait_for("CALL_CLOSED")

    assert "404" in closed.get("param", "")
    time.sleep(0.3)
    assert not Call.objects.exists()


def test_a_call_in_an_agents_name_needs_their_credentials(pbx, rapport, line):
    dana = sip_people.agent("dana", "9001", line)
    sip_people.agent("lee", "9002", line, status=AgentStatus.OFFLINE)
    dana_phone = pbx.phone("9001")
    lees_phone = pbx.phone("9002")
    impostor = pbx.caller("9002")

    impostor.dial(pbx.sip_uri(QUEUE_NUMBER))
    refused = impostor.wait_for("CALL_CLOSED")
    # Lee's own phone, answering the challenge with Rapport's credentials, gets through.
    lees_phone.dial(pbx.sip_uri(QUEUE_NUMBER))
    dana_phone.wait_for("CALL_ESTABLISHED")
    lees_phone.hangup()
    lees_phone.wait_for("CALL_CLOSED")

    assert "407" in refused.get("param", "")
    call = ended()
    assert (call.from_number, call.agent, call.end_reason) == ("9002", dana, "completed")
    assert Call.objects.count() == 1


def test_the_last_agent_who_lets_it_ring_for_the_hints_wait_loses_it_to_the_queue(
    pbx, rapport, line
):
    line.offer_timeout_seconds = 2
    line.save()
    dana = sip_people.agent("dana", "9101", line)
    bob = sip_people.agent("bob", "9102", line)
    sip_people.spoke_with(MAYA, dana, line)
    dana_phone = pbx.phone("9101", answer="manual")
    bob_phone = pbx.phone("9102")
    caller = pbx.caller(MAYA)

    dialled_at = caller.dial(pbx.sip_uri(QUEUE_NUMBER))
    rang = dana_phone.wait_for("CALL_INCOMING")
    answered = bob_phone.wait_for("CALL_ESTABLISHED", timeout=6)
    caller.hangup()
    caller.wait_for("CALL_CLOSED")

    assert 1.8 < answered["at"] - rang["at"] < 3.5
    assert dana_phone.wait_for("CALL_CLOSED", after=dialled_at)
    call = ended()
    assert (call.agent, call.end_reason) == (bob, "completed")
