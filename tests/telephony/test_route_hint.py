"""`GET /api/telephony/route-hint/`: whom a PBX that routes its own calls should ring first for a
caller, and for how long, by the router's rules; it names no customer."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission, User
from django.utils import timezone
from rest_framework.authtoken.models import Token

from customers.models import HoldTolerance, Pace
from routing import router
from routing.models import Agent, Call, Offer, Queue
from routing.states import AgentStatus, CallState, OfferState
from telephony.signing import sign, signed_request_content
from tests.support.routing import arrive

URL = "/api/telephony/route-hint/"
MAYA = "+14155550123"


@pytest.fixture
def queue(db) -> Queue:
    return Queue.objects.create(
        slug="loyalty",
        name="Loyalty",
        numbers=["+18005550100"],
        offer_timeout_seconds=15,
        last_agent_wait_seconds=25,
        hold_averse_wait_seconds=6,
    )


@pytest.fixture
def token(db) -> str:
    pbx = User.objects.create_user("pbx")
    pbx.user_permissions.add(Permission.objects.get(codename="view_call"))
    return Token.objects.create(user=pbx).key


@pytest.fixture
def dana(make_agent):
    return make_agent("dana", extension="1001", status=AgentStatus.BUSY)


def spoke_with(customer, agent, queue, *, days_ago: int = 3) -> Call:
    at = timezone.now() - timedelta(days=days_ago)
    return Call.objects.create(
        telephony_call_id=f"past-{customer.id}-{agent.id}-{days_ago}",
        customer=customer,
        agent=agent,
        queue=queue,
        state=CallState.ENDED,
        connected_at=at,
        ended_at=at + timedelta(minutes=4),
    )


CONTRACT_FIELDS = ("agent", "status", "wait_seconds", "reason")


def full_hint(client, token: str, **params) -> dict:
    response = client.get(URL, params, HTTP_AUTHORIZATION=f"Token {token}")
    assert response.status_code == 200, response.content
    return response.json()


def hint(client, token: str, **params) -> dict:
    """The contract's fields of the answer (the first agent), without the additive ones."""
    return {
        key: value
        for key, value in full_hint(client, token, **params).items()
        if key in CONTRACT_FIELDS
    }


def test_a_returning_caller_is_sent_to_their_busy_last_agent_for_the_queues_wait(
    client, token, queue, dana, make_customer
):
    maya = make_customer("Maya Chen", phones=(MAYA,))
    spoke_with(maya, dana, queue)

    answer = hint(client, token, **{"from": MAYA, "queue": "loyalty"})

    assert answer == {
        "agent": "1001",
        "status": "busy",
        "wait_seconds": 25,
        "reason": "last_agent_busy_waited",
    }
    assert "Maya" not in str(answer)


def test_a_plus_the_dialplan_left_unencoded_still_reads_as_a_plus(
    client, token, queue, dana, make_customer
):
    lena = make_customer("Lena Vogel", phones=("+4915112345678",))
    spoke_with(lena, dana, queue)

    response = client.get(
        f"{URL}?from=+4915112345678&queue=loyalty", HTTP_AUTHORIZATION=f"Token {token}"
    )

    assert response.json()["agent"] == "1001"


def test_the_queue_may_be_named_by_the_dialled_number(client, token, queue, dana, make_customer):
    maya = make_customer("Maya Chen", phones=(MAYA,))
    spoke_with(maya, dana, queue)

    assert hint(client, token, **{"from": MAYA, "queue": "+18005550100"})["agent"] == "1001"


@pytest.mark.parametrize(
    "preference",
    [{"hold_tolerance": HoldTolerance.AVOID}, {"pace": Pace.BRISK}],
    ids=["avoids holding", "in a rush"],
)
def test_a_caller_who_avoids_holding_gets_the_short_wait(
    client, token, queue, dana, make_customer, preference
):
    maya = make_customer("Maya Chen", phones=(MAYA,), **preference)
    spoke_with(maya, dana, queue)

    answer = hint(client, token, **{"from": MAYA, "queue": "loyalty"})

    assert answer == {
        "agent": "1001",
        "status": "busy",
        "wait_seconds": 6,
        # The router's own word for a caller held (briefly) for their busy last agent.
        "reason": "last_agent_busy_waited",
    }


def test_a_caller_fine_on_hold_gets_the_full_wait(client, token, queue, dana, make_customer):
    maya = make_customer("Maya Chen", phones=(MAYA,), hold_tolerance=HoldTolerance.FINE)
    spoke_with(maya, dana, queue)

    assert hint(client, token, **{"from": MAYA, "queue": "loyalty"})["wait_seconds"] == 25


def test_with_no_hold_averse_wait_such_a_caller_goes_straight_to_the_ring_group(
    client, token, queue, dana, make_customer
):
    queue.hold_averse_wait_seconds = 0
    queue.save()
    maya = make_customer("Maya Chen", phones=(MAYA,), hold_tolerance=HoldTolerance.AVOID)
    spoke_with(maya, dana, queue)

    assert hint(client, token, **{"from": MAYA, "queue": "loyalty"}) == {
        "agent": None,
        "status": "busy",
        "wait_seconds": 0,
        "reason": "last_agent_busy_not_held",
    }


def test_a_free_last_agent_is_rung_as_long_as_an_offer_rings(
    client, token, queue, make_agent, make_customer
):
    dana = make_agent("dana", extension="1001", status=AgentStatus.AVAILABLE)
    maya = make_customer("Maya Chen", phones=(MAYA,), hold_tolerance=HoldTolerance.AVOID)
    spoke_with(maya, dana, queue)

    assert hint(client, token, **{"from": MAYA, "queue": "loyalty"}) == {
        "agent": "1001",
        "status": "available",
        "wait_seconds": 15,
        "reason": "last_agent",
    }


def test_the_most_recent_agent_is_the_last_agent(
    client, token, queue, dana, make_agent, make_customer
):
    sam = make_agent("sam", extension="1002", status=AgentStatus.AVAILABLE)
    maya = make_customer("Maya Chen", phones=(MAYA,))
    spoke_with(maya, dana, queue, days_ago=9)
    spoke_with(maya, sam, queue, days_ago=2)

    assert hint(client, token, **{"from": MAYA, "queue": "loyalty"})["agent"] == "1002"


def test_an_away_last_agent_is_not_rung(client, token, queue, make_agent, make_customer):
    dana = make_agent("dana", extension="1001", status=AgentStatus.BREAK)
    maya = make_customer("Maya Chen", phones=(MAYA,))
    spoke_with(maya, dana, queue)

    assert hint(client, token, **{"from": MAYA, "queue": "loyalty"}) == {
        "agent": None,
        "status": "break",
        "wait_seconds": 0,
        "reason": "last_agent_unavailable",
    }


def test_an_unknown_caller_has_no_agent(client, token, queue, dana):
    assert hint(client, token, **{"from": "+14155550999", "queue": "loyalty"}) == {
        "agent": None,
        "status": None,
        "wait_seconds": 0,
        "reason": "unknown_caller",
    }


def test_a_known_caller_who_never_spoke_to_the_team_has_no_agent(
    client, token, queue, make_customer
):
    make_customer("Maya Chen", phones=(MAYA,))

    assert hint(client, token, **{"from": MAYA})["reason"] == "no_last_agent"


def test_a_shared_number_names_nobody(client, token, queue, dana, make_customer):
    spoke_with(make_customer("Maya Chen", phones=(MAYA,)), dana, queue)
    make_customer("Lee Chen", phones=(MAYA,))

    assert hint(client, token, **{"from": MAYA})["agent"] is None


def test_it_refuses_a_request_without_credentials_or_with_a_token_that_may_not_view_calls(
    client, queue
):
    nobody = Token.objects.create(user=User.objects.create_user("intern")).key

    anonymous = client.get(URL, {"from": MAYA})
    unauthorised = client.get(URL, {"from": MAYA}, HTTP_AUTHORIZATION=f"Token {nobody}")
    wrong = client.get(URL, {"from": MAYA}, HTTP_AUTHORIZATION="Token not-a-token")

    assert [anonymous.status_code, unauthorised.status_code, wrong.status_code] == [401] * 3
    assert "detail" in anonymous.json()


def test_a_signed_request_is_answered_once(client, webhook_secret, queue):
    headers = {
        "HTTP_" + name.upper().replace("-", "_"): value
        for name, value in sign(body=signed_request_content(method="GET", path=URL)).items()
    }

    first = client.get(URL, {"from": MAYA}, **headers)
    replayed = client.get(URL, {"from": MAYA}, **headers)

    assert first.status_code == 200
    assert replayed.status_code == 401


def test_a_missing_caller_is_named(client, token, queue):
    response = client.get(URL, HTTP_AUTHORIZATION=f"Token {token}")

    assert response.status_code == 400
    assert "from" in response.json()["errors"]


# --- the route hint and the router agree --------------------------------------------------------


def whom_the_router_rings(call: Call) -> tuple[str | None, str]:
    """Whom the router's first look at `call` offered it to or holds it for (their telephony
    identity, or None: the call went to the queue), and the reason of its last-agent decision."""
    call.refresh_from_db()
    first_decision = call.decisions.order_by("id").first()
    offer = Offer.objects.filter(call=call, state=OfferState.OFFERED).first()
    if offer is not None:
        return offer.agent.telephony_identity, first_decision.reason
    if call.last_agent_wait_until is not None:
        return call.last_agent.telephony_identity, first_decision.reason
    return None, first_decision.reason


def ask_both(client, token, queue, customer) -> tuple[dict, tuple[str | None, str]]:
    """The hint for `customer`'s number, then the router's first look at a call from them."""
    answer = hint(client, token, **{"from": MAYA, "queue": queue.slug})
    call = arrive(queue=queue, customer=customer, number=MAYA, publish=False)
    router.route_call(call.id)
    return answer, whom_the_router_rings(call)


@pytest.mark.usefixtures("sent")
def test_for_a_caller_fine_on_hold_and_no_wait_both_send_the_caller_to_the_queue(
    client, token, queue, dana, make_customer
):
    queue.last_agent_wait_seconds = 0
    queue.save()
    maya = make_customer("Maya Chen", phones=(MAYA,), hold_tolerance=HoldTolerance.FINE)
    spoke_with(maya, dana, queue)

    answer, (rung, reason) = ask_both(client, token, queue, maya)

    assert (
        (answer["agent"], answer["reason"]) == (rung, reason) == (None, "last_agent_wait_expired")
    )
    assert answer["wait_seconds"] == 0


@pytest.mark.usefixtures("sent")
def test_for_a_last_agent_ringing_for_another_caller_both_hold_the_caller_for_them(
    client, token, queue, make_agent, make_customer
):
    dana = make_agent("dana", extension="1001", status=AgentStatus.AVAILABLE)
    other = arrive(queue=queue, number="+14155550777", publish=False)
    Offer.objects.create(
        call=other,
        agent=dana,
        state=OfferState.OFFERED,
        offered_at=timezone.now(),
        expires_at=timezone.now() + timedelta(seconds=15),
    )
    maya = make_customer("Maya Chen", phones=(MAYA,))
    spoke_with(maya, dana, queue)

    answer, (rung, reason) = ask_both(client, token, queue, maya)

    assert (answer["agent"], answer["reason"]) == (rung, reason)
    assert (rung, reason) == ("1001", "last_agent_busy_waited")
    assert (answer["status"], answer["wait_seconds"]) == ("available", 25)


@pytest.mark.usefixtures("sent")
def test_for_a_last_agent_who_left_the_queue_both_give_the_routers_reason(
    client, token, queue, make_agent, make_customer
):
    elsewhere = Queue.objects.create(slug="vip", name="VIP")
    dana = make_agent("dana", extension="1001", status=AgentStatus.AVAILABLE)
    maya = make_customer("Maya Chen", phones=(MAYA,))
    spoke_with(maya, dana, queue)
    dana.queues.set([elsewhere])

    answer, (rung, reason) = ask_both(client, token, queue, maya)

    assert (answer["agent"], answer["reason"]) == (rung, reason)
    assert (rung, reason) == (None, "last_agent_unavailable")


# --- then: the queue's agents, in the router's order (additive to the contract) ------------------


def test_then_names_the_queues_free_agents_longest_idle_first_without_the_first_agent(
    client, token, queue, make_agent, make_customer
):
    now = timezone.now()
    dana = make_agent("dana", extension="1001", status=AgentStatus.AVAILABLE)
    make_agent("bob", extension="1002", status=AgentStatus.AVAILABLE)
    make_agent("cleo", extension="1003", status=AgentStatus.AVAILABLE)
    make_agent("eve", extension="1004", status=AgentStatus.BREAK)
    make_agent("finn", extension="1005", status=AgentStatus.AVAILABLE, queues=[])
    Agent.objects.filter(telephony_identity="1003").update(
        status_changed_at=now - timedelta(hours=1)
    )
    Agent.objects.filter(telephony_identity="1002").update(
        status_changed_at=now - timedelta(minutes=5)
    )
    maya = make_customer("Maya Chen", phones=(MAYA,))
    spoke_with(maya, dana, queue)

    answer = full_hint(client, token, **{"from": MAYA, "queue": "+18005550100"})

    assert answer["agent"] == "1001"
    assert answer["then"] == ["1003", "1002"]
    assert answer["ring_seconds"] == 15
    assert answer["queue"] == "loyalty"


@pytest.mark.usefixtures("sent")
def test_then_begins_with_whom_the_router_offers_a_call_of_the_queue(
    client, token, queue, make_agent
):
    make_agent("bob", extension="1002", status=AgentStatus.AVAILABLE)
    make_agent("cleo", extension="1003", status=AgentStatus.AVAILABLE)
    Agent.objects.filter(telephony_identity="1003").update(
        status_changed_at=timezone.now() - timedelta(hours=1)
    )

    answer = full_hint(client, token, **{"from": "+14155550999", "queue": "loyalty"})
    call = arrive(queue=queue, number="+14155550999", publish=False)
    router.route_call(call.id)

    assert answer["agent"] is None
    assert answer["then"][0] == whom_the_router_rings(call)[0] == "1003"


def test_then_leaves_out_an_agent_an_offer_rings_for(client, token, queue, make_agent):
    bob = make_agent("bob", extension="1002", status=AgentStatus.AVAILABLE)
    make_agent("cleo", extension="1003", status=AgentStatus.AVAILABLE)
    Offer.objects.create(
        call=arrive(queue=queue, number="+14155550777", publish=False),
        agent=bob,
        state=OfferState.OFFERED,
        offered_at=timezone.now(),
        expires_at=timezone.now() + timedelta(seconds=15),
    )

    assert full_hint(client, token, **{"from": MAYA})["then"] == ["1003"]


def test_a_number_no_queue_has_is_answered_with_no_queue(client, token, queue, make_agent):
    make_agent("bob", extension="1002", status=AgentStatus.AVAILABLE)

    answer = full_hint(client, token, **{"from": MAYA, "queue": "+18005559999"})

    assert answer["queue"] is None
    assert answer["then"] == ["1002"]
