"""Generic CTI (docs/telephony.md, "Generic CTI") as a PBX sends it: every event is posted by the
py-zammad-cti package's CTIClient to a real server. The PBX routes; Rapport shows the caller to
the agents whose phones ring and to the one who answers, and never routes the call itself."""

import asyncio
import json

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator
from django.db import connection
from django.test.utils import CaptureQueriesContext

from console import services as console_services
from customers.models import CallNote, Consent, ContextAccess
from infrastructure.errors import Refused
from rapport.asgi import application
from routing import handoff, transfers
from routing.models import Agent, Call, DecisionReason, Offer, RoutingDecision
from routing.states import AgentStatus, CallState
from telephony import instructions
from telephony.models import CallEvent, CallEventType
from tests.support.generic_cti import (
    TOKEN,
    answer,
    cti_url,
    hangup,
    new_call,
    send,
)
from tests.support.routing import FAST_PASSWORD_HASHERS, tasks_published
from tests.support.sockets import fresh_channel_layer, socket_headers  # noqa: F401 (fixture)

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.slow,
    pytest.mark.timeout(120),
    pytest.mark.usefixtures("cti_client_python"),
]

MAYA = "+14155550123"


@pytest.fixture(autouse=True)
def cti_settings(settings):
    settings.PASSWORD_HASHERS = FAST_PASSWORD_HASHERS
    settings.TELEPHONY_CTI_TOKEN = TOKEN


@pytest.fixture
def url(live_server) -> str:
    return cti_url(live_server.url)


@pytest.fixture
def dana(make_agent):
    return make_agent("dana", extension="1001", status=AgentStatus.AVAILABLE)


@pytest.fixture
def sam(make_agent):
    return make_agent("sam", extension="1002", status=AgentStatus.AVAILABLE)


@pytest.fixture
def maya(make_customer, sam):
    customer = make_customer("Maya Chen", phones=(MAYA,), consent=Consent.OPEN)
    CallNote.objects.create(customer=customer, author=sam.user, text="Asked about trail shoes.")
    return customer


def listening(agents: list[Agent], work, *, expect: dict[str, int]) -> dict[str, list[dict]]:
    """Open each agent's socket, run `work` (blocking) and collect, per username, the messages
    after the first `state`, until each has `expect[username]` of them."""

    headers = {agent.user.username: socket_headers(agent.user) for agent in agents}

    async def scenario():
        sockets = {}
        for username in headers:
            socket = WebsocketCommunicator(application, "/ws/agent/", headers=headers[username])
            connected, _ = await socket.connect()
            assert connected
            assert (await socket.receive_json_from(timeout=10))["type"] == "state"
            sockets[username] = socket
        await asyncio.to_thread(work)
        received = {}
        for username, socket in sockets.items():
            received[username] = []
            while len(received[username]) < expect.get(username, 0):
                message = await socket.receive_json_from(timeout=10)
                if message["type"] != "status":
                    received[username].append(message)
            if not expect.get(username):
                assert await socket.receive_nothing(timeout=0.5)
            await socket.disconnect()
        return received

    return async_to_sync(scenario)()


def test_a_new_call_rings_a_card_with_the_callers_context_for_the_named_user_only(
    url, dana, sam, maya
):
    answers = []
    with tasks_published() as published:
        received = listening(
            [dana, sam],
            lambda: answers.extend(send(url, new_call("cti-1", caller=MAYA, user="Dana"))),
            expect={"dana": 1},
        )

    assert answers == [{"status": 200, "body": {}}]
    [card] = received["dana"]
    assert card["type"] == "ringing"
    assert card["call_id"] == "cti-1"
    assert card["caller"]["customer"]["name"] == "Maya Chen"
    assert [note["text"] for note in card["caller"]["customer"]["notes"]] == [
        "Asked about trail shoes."
    ]
    call = Call.objects.get(telephony_call_id="cti-1")
    assert call.state == CallState.RINGING
    assert call.customer == maya
    # The PBX routes: no offer, no routing decision, no routing task.
    assert not Offer.objects.exists()
    assert not RoutingDecision.objects.exists()
    assert not [task for task, _ in published if task == handoff.ROUTE_CALL]
    assert list(ContextAccess.objects.values_list("username", "reason", "call_id")) == [
        ("dana", "offer", call.id)
    ]


def test_the_ringing_card_shows_only_what_consent_allows(url, dana, make_customer, sam):
    closed = make_customer("Ruth Fischer", phones=(MAYA,), consent=Consent.CLOSED)
    CallNote.objects.create(customer=closed, author=sam.user, text="Bought boots for her son.")
    CallNote.objects.create(
        customer=closed, author=sam.user, text="Refund still pending.", open_matter=True
    )

    received = listening(
        [dana],
        lambda: send(url, new_call("cti-closed", caller=MAYA, user=["dana"])),
        expect={"dana": 1},
    )

    customer = received["dana"][0]["caller"]["customer"]
    assert customer["history_hidden"] is True
    assert [note["text"] for note in customer["notes"]] == ["Refund still pending."]


def test_the_answering_agent_gets_the_screen_pop_and_becomes_the_callers_last_agent(
    url, dana, sam, maya
):
    send(url, new_call("cti-2", caller=MAYA, user=["Dana", "Sam"]))

    received = listening(
        [dana, sam],
        lambda: send(url, answer("cti-2", caller=MAYA, answering_number="1002", user="Sam")),
        expect={"dana": 1, "sam": 2},
    )

    assert received["dana"] == [
        {"type": "ringing_ended", "call_id": "cti-2", "state": CallState.CONNECTED}
    ]
    by_type = {message["type"]: message for message in received["sam"]}
    assert by_type["call"]["state"] == CallState.CONNECTED
    assert by_type["call"]["caller"]["customer"]["notes"][0]["text"] == "Asked about trail shoes."
    assert "ringing_ended" in by_type
    call = Call.objects.get(telephony_call_id="cti-2")
    assert call.agent == sam
    assert call.connected_at is not None
    assert Agent.objects.get(id=sam.id).status == AgentStatus.BUSY
    assert list(call.decisions.values_list("reason", "agent_id")) == [
        (DecisionReason.TELEPHONY_ANSWERED, sam.id)
    ]
    assert not Offer.objects.exists()
    assert (
        Call.objects.filter(customer=maya, connected_at__isnull=False).latest("connected_at").agent
        == sam
    )


def test_the_answering_number_may_be_the_agents_username(url, dana, maya):
    send(
        url,
        new_call("cti-3", caller=MAYA, user="Dana"),
        answer("cti-3", caller=MAYA, answering_number="dana"),
    )

    assert Call.objects.get(telephony_call_id="cti-3").agent == dana


def test_hangup_causes_end_the_call_and_a_hangup_before_any_answer_is_abandoned(url, dana):
    unanswered = ["cancel", "noAnswer", "busy", "congestion", "notFound", "forwarded"]
    calls = []
    for cause in unanswered:
        calls += [
            new_call(f"cti-{cause}", caller=MAYA, user="Dana"),
            hangup(f"cti-{cause}", caller=MAYA, cause=cause),
        ]
    calls += [
        new_call("cti-rang-out", caller=MAYA, user="Dana"),
        hangup("cti-rang-out", caller=MAYA, cause="normalClearing"),
        new_call("cti-talked", caller=MAYA, user="Dana"),
        answer("cti-talked", caller=MAYA, answering_number="1001"),
        hangup("cti-talked", caller=MAYA, cause="normalClearing", answering_number="1001"),
    ]

    assert {result["status"] for result in send(url, *calls)} == {200}

    ended = dict(
        Call.objects.values_list("telephony_call_id", "state").filter(
            telephony_call_id__startswith="cti-"
        )
    )
    reasons = dict(Call.objects.values_list("telephony_call_id", "end_reason"))
    assert {ended[f"cti-{cause}"] for cause in unanswered} == {CallState.ABANDONED}
    assert [reasons[f"cti-{cause}"] for cause in unanswered] == [
        "abandoned",
        "no-answer",
        "busy",
        "failed",
        "failed",
        "no-answer",
    ]
    assert (ended["cti-rang-out"], reasons["cti-rang-out"]) == (CallState.ABANDONED, "abandoned")
    assert (ended["cti-talked"], reasons["cti-talked"]) == (CallState.ENDED, "completed")
    assert Agent.objects.get(id=dana.id).status == AgentStatus.WRAP_UP


def test_an_outbound_call_is_logged_against_the_customer_and_not_routed(url, dana, maya):
    outbound = {"direction": "out"}
    with tasks_published() as published:
        received = listening(
            [dana],
            lambda: send(
                url,
                (
                    "new_call",
                    {"_from": "1001", "to": MAYA, "call_id": "cti-out", "user": "Dana", **outbound},
                ),
            ),
            expect={},
        )
    assert received == {"dana": []}
    call = Call.objects.get(telephony_call_id="cti-out")
    assert call.customer == maya
    assert call.state == CallState.RINGING
    assert not ContextAccess.objects.exists()
    assert not RoutingDecision.objects.exists()
    assert not [task for task, _ in published if task == handoff.ROUTE_CALL]

    send(
        url,
        ("answer", {"_from": "1001", "to": MAYA, "call_id": "cti-out", "user": "Dana", **outbound}),
        (
            "hangup",
            {"_from": "1001", "to": MAYA, "call_id": "cti-out", "cause": "normalClearing"}
            | outbound,
        ),
    )
    call.refresh_from_db()
    assert (call.state, call.end_reason, call.agent, call.customer) == (
        CallState.ENDED,
        "completed",
        dana,
        maya,
    )
    assert not Offer.objects.exists()


def test_a_wrong_token_is_refused_with_403_and_json_and_records_nothing(live_server, dana):
    [refused] = send(cti_url(live_server.url, "not-the-token"), new_call("cti-x", caller=MAYA))

    assert refused["status"] == 403
    assert "detail" in refused["body"]
    assert not Call.objects.exists()


def test_without_a_configured_token_the_endpoint_is_not_there(live_server, settings):
    settings.TELEPHONY_CTI_TOKEN = ""

    [missing] = send(cti_url(live_server.url), new_call("cti-x", caller=MAYA))

    assert missing["status"] == 404
    assert "detail" in missing["body"]


def test_retried_events_change_nothing_the_second_time(url, dana, maya):
    events = [
        new_call("cti-r", caller=MAYA, user="Dana"),
        answer("cti-r", caller=MAYA, answering_number="1001"),
        hangup("cti-r", caller=MAYA, cause="normalClearing", answering_number="1001"),
    ]

    answers = send(url, *[event for event in events for _ in range(2)])

    assert answers == [{"status": 200, "body": {}}] * 6
    call = Call.objects.get(telephony_call_id="cti-r")
    assert call.events.count() == 3
    assert (call.state, call.agent) == (CallState.ENDED, dana)
    assert call.decisions.count() == 1
    assert ContextAccess.objects.filter(reason="offer").count() == 1
    assert ContextAccess.objects.filter(reason="call").count() == 2  # connected, wrap-up


def test_an_answer_whose_new_call_was_lost_still_records_the_caller(url, dana, maya):
    send(url, answer("cti-lost", caller=MAYA, answering_number="1001"))

    call = Call.objects.get(telephony_call_id="cti-lost")
    assert (call.state, call.agent, call.customer) == (CallState.CONNECTED, dana, maya)


def test_bad_fields_are_named_in_a_4xx(url, dana):
    bad_cause, no_call_id = send(
        url,
        hangup("cti-bad", caller=MAYA, cause="exploded"),
        new_call("", caller=MAYA),
    )

    assert bad_cause["status"] == 400
    assert "cause" in bad_cause["body"]["errors"]
    assert no_call_id["status"] == 400
    assert "callId" in no_call_id["body"]["errors"]
    assert not CallEvent.objects.exists()


def test_a_json_body_is_accepted_too(client, dana, maya):
    body = {
        "event": "newCall",
        "callId": "cti-json",
        "from": MAYA,
        "to": "+18005550100",
        "direction": "in",
        "user[]": ["Dana"],
    }

    response = client.post(
        f"/api/telephony/cti/{TOKEN}/", json.dumps(body), content_type="application/json"
    )

    assert (response.status_code, response.json()) == (200, {})
    assert ContextAccess.objects.get().username == "dana"


def test_a_second_agent_answering_later_takes_the_call_over(url, dana, sam, maya):
    send(
        url,
        new_call("cti-hand", caller=MAYA, user=["Dana", "Sam"]),
        answer("cti-hand", caller=MAYA, answering_number="1001"),
        answer("cti-hand", caller=MAYA, answering_number="1002"),
    )

    call = Call.objects.get(telephony_call_id="cti-hand")
    assert call.agent == sam
    assert Agent.objects.get(id=sam.id).status == AgentStatus.BUSY
    assert Agent.objects.get(id=dana.id).status == AgentStatus.WRAP_UP


def test_ringing_more_phones_costs_no_more_queries(client, make_agent, maya):
    def queries_to_ring(call_id: str, names: list[str]) -> int:
        body = {"event": "newCall", "callId": call_id, "from": MAYA, "to": "+18005550100"}
        with CaptureQueriesContext(connection) as queries:
            response = client.post(f"/api/telephony/cti/{TOKEN}/", {**body, "user": names})
        assert response.status_code == 200
        return len(queries)

    group = [make_agent(f"agent{i}", extension=f"20{i}").user.username for i in range(6)]

    assert queries_to_ring("cti-one", group[:1]) == queries_to_ring("cti-six", group)
    six = Call.objects.get(telephony_call_id="cti-six")
    assert ContextAccess.objects.filter(call_id=six.id).count() == 6


def test_a_hand_off_on_a_cti_call_sends_the_note_ahead_and_nothing_to_the_pbx(
    url, dana, sam, maya, settings
):
    """The PBX takes no instructions: the colleague's offer carries the note, his accept pushes
    nothing (the agent transfers on the phone), and hang-up and hold are not offered."""
    settings.TELEPHONY_CONTROL_URL = "http://127.0.0.1:9/never-called"
    send(url, new_call("cti-h", caller=MAYA, user=["Dana"]))
    send(url, answer("cti-h", caller=MAYA, answering_number="1001", user="Dana"))
    call = Call.objects.get(telephony_call_id="cti-h")
    assert instructions.controls_for(call) == {"transfer": "phone", "hangup": False, "hold": False}

    with tasks_published() as published:
        offer = transfers.request_transfer(
            agent_id=dana.id, telephony_call_id="cti-h", to_agent_id=sam.id, note="wants a refund"
        )
        console_services.accept_offer(offer_id=offer.id, agent_id=sam.id)

    assert not [name for name, _ in published if name.startswith("telephony.")]
    assert Offer.objects.get(id=offer.id).handoff_note == "wants a refund"
    with pytest.raises(Refused) as refused:
        console_services.control_call(
            agent_id=dana.id, message={"type": "hangup", "call_id": "cti-h"}
        )
    assert refused.value.field == "type"


def test_a_new_call_naming_the_next_agent_rings_their_card_once_and_an_answer_closes_both(
    url, dana, sam, maya
):
    """The PBX rings agents one after another (deploy/kamailio/): each newCall names the next."""
    send(url, new_call("cti-next", caller=MAYA, user="1001"))

    received = listening(
        [dana, sam],
        lambda: send(
            url,
            new_call("cti-next", caller=MAYA, user="1002"),
            new_call("cti-next", caller=MAYA, user="1002"),
            new_call("cti-next", caller=MAYA, user="1001"),
            answer("cti-next", caller=MAYA, answering_number="1002"),
        ),
        expect={"dana": 1, "sam": 3},
    )

    sams = [message["type"] for message in received["sam"]]
    assert sams[0] == "ringing" and sams.count("ringing") == 1 and "call" in sams
    assert [message["type"] for message in received["dana"]] == ["ringing_ended"]
    call = Call.objects.get(telephony_call_id="cti-next")
    assert (call.state, call.agent) == (CallState.CONNECTED, sam)
    assert call.events.filter(type=CallEventType.RINGING).count() == 2


def test_a_new_call_naming_another_agent_after_the_answer_rings_nobody(url, dana, sam, maya):
    send(
        url,
        new_call("cti-late", caller=MAYA, user="1001"),
        answer("cti-late", caller=MAYA, answering_number="1001"),
    )

    received = listening(
        [sam], lambda: send(url, new_call("cti-late", caller=MAYA, user="1002")), expect={}
    )

    assert received["sam"] == []
