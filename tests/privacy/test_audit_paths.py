"""Every path that shows a customer is audited and ends with the session: a socket whose login
has ended gets no more screen-pops, the supervisor wall, a call's routing story and the admin's
lists each record who saw whom, and the wall shows only what consent allows."""

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import Group, User
from django.test import Client
from django.utils import timezone

from customers.models import CallNote, ContextAccess
from rapport.asgi import application
from routing import router
from routing.models import Call, Offer
from routing.states import OfferState
from tests.support.routing import arrive
from tests.support.sockets import fresh_channel_layer  # noqa: F401 (fixture)

pytestmark = pytest.mark.usefixtures("fast_logins")


def _logged_in(user: User) -> tuple[Client, list[tuple[bytes, bytes]]]:
    """A browser logged in as `user`, and the headers its sockets open with."""
    client = Client()
    client.force_login(user)
    headers = [
        (b"origin", b"http://localhost"),
        (b"host", b"localhost"),
        (b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode()),
    ]
    return client, headers


def _ring(queue) -> Offer:
    call = arrive(queue=queue, number="+14155550123", publish=False)
    router.route_call(call.id)
    return Offer.objects.get(call=call, state=OfferState.OFFERED)


async def _closed_before_anything_else(socket: WebsocketCommunicator) -> int:
    """The socket's close code; fails if it was sent anything first."""
    output = await socket.receive_output(timeout=10)
    assert output["type"] == "websocket.close", output
    return output["code"]


# 6. A socket ends with its session -----------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.timeout(60)
def test_logging_out_closes_the_agent_socket_and_the_next_offer_never_reaches_it(make_agent, queue):
    dana = make_agent("dana", status="available")
    browser, headers = _logged_in(dana.user)

    async def scenario():
        socket = WebsocketCommunicator(application, "/ws/agent/", headers=headers)
        connected, _ = await socket.connect()
        assert connected
        assert (await socket.receive_json_from(timeout=5))["type"] == "state"
        logged_out = await database_sync_to_async(browser.post)("/accounts/logout/")
        assert logged_out.status_code == 302
        await database_sync_to_async(_ring)(queue)
        return await _closed_before_anything_else(socket)

    assert async_to_sync(scenario)() == 4403


@pytest.mark.django_db(transaction=True)
@pytest.mark.timeout(60)
def test_a_deactivated_agent_is_offered_nothing_and_their_socket_sent_no_caller(make_agent, queue):
    """The router passes over a deactivated agent; the socket closes before any caller the
    phone system still puts through (tests/privacy/test_roles_rechecked.py)."""
    dana = make_agent("dana", status="available")
    _, headers = _logged_in(dana.user)

    async def scenario():
        socket = WebsocketCommunicator(application, "/ws/agent/", headers=headers)
        connected, _ = await socket.connect()
        assert connected
        assert (await socket.receive_json_from(timeout=5))["type"] == "state"
        await database_sync_to_async(User.objects.filter(id=dana.user.id).update)(is_active=False)
        call = await database_sync_to_async(arrive)(queue=queue, publish=False)
        await database_sync_to_async(router.route_call)(call.id)
        nothing = await socket.receive_nothing(timeout=1)
        await socket.disconnect()
        return nothing

    assert async_to_sync(scenario)()
    assert not Offer.objects.filter(agent=dana).exists()
    assert not ContextAccess.objects.filter(user=dana.user).exists()


@pytest.mark.django_db(transaction=True)
@pytest.mark.timeout(60)
def test_logging_out_closes_the_supervisor_wall(queue):
    morgan = User.objects.create_user("morgan")
    morgan.groups.add(Group.objects.get_or_create(name="supervisor")[0])
    browser, headers = _logged_in(morgan)

    async def scenario():
        socket = WebsocketCommunicator(application, "/ws/supervisor/", headers=headers)
        connected, _ = await socket.connect()
        assert connected
        assert (await socket.receive_json_from(timeout=5))["type"] == "snapshot"
        await database_sync_to_async(browser.post)("/accounts/logout/")
        return await _closed_before_anything_else(socket)

    assert async_to_sync(scenario)() == 4403


# 9. Every look is audited, and the wall shows only what consent allows ------------------------


def _supervisor() -> User:
    morgan = User.objects.create_user("morgan")
    morgan.groups.add(Group.objects.get_or_create(name="supervisor")[0])
    return morgan


def _talking(queue, agent, customer, telephony_call_id: str) -> Call:
    return Call.objects.create(
        telephony_call_id=telephony_call_id,
        queue=queue,
        agent=agent,
        customer=customer,
        state="connected",
        from_e164="+14155550123",
        connected_at=timezone.now(),
    )


@pytest.mark.django_db
def test_the_wall_names_only_callers_whose_consent_allows_and_audits_each_once(
    queue, make_agent, make_customer
):
    maya = make_customer("Maya Chen", consent="open")
    leo = make_customer("Leo Private", phones=["+14155550999"], consent="closed")
    maya_call = _talking(queue, make_agent("dana", status="busy"), maya, "CA-maya")
    _talking(queue, make_agent("sam", status="busy"), leo, "CA-leo")
    client = Client()
    client.force_login(_supervisor())

    first = client.get("/supervisor/")
    client.get("/supervisor/")

    assert b"Maya Chen" in first.content
    assert b"Leo Private" not in first.content
    assert b"Anonymous caller" in first.content
    assert list(ContextAccess.objects.values_list("customer_id", "reason", "call_id")) == [
        (maya.id, "supervisor", maya_call.id)
    ]


@pytest.mark.django_db
def test_the_json_figures_name_no_caller(queue, make_agent, make_customer):
    maya = make_customer("Maya Chen", consent="open")
    _talking(queue, make_agent("dana", status="busy"), maya, "CA-maya")
    client = Client()
    client.force_login(_supervisor())

    figures = client.get("/api/supervisor/")
    stats = client.get(f"/api/queues/{queue.slug}/stats/")

    assert figures.status_code == stats.status_code == 200
    assert "Maya" not in figures.content.decode() + stats.content.decode()
    assert figures.json()["agents"][0]["call"]["caller"] == "Identified caller"
    assert not ContextAccess.objects.exists()


@pytest.mark.django_db(transaction=True)
@pytest.mark.timeout(60)
def test_the_supervisor_socket_audits_the_callers_it_names(queue, make_agent, make_customer):
    maya = make_customer("Maya Chen", consent="conditional")
    call = _talking(queue, make_agent("dana", status="busy"), maya, "CA-maya")
    morgan = _supervisor()
    _, headers = _logged_in(morgan)

    async def snapshot():
        socket = WebsocketCommunicator(application, "/ws/supervisor/", headers=headers)
        await socket.connect()
        frame = await socket.receive_json_from(timeout=5)
        await socket.disconnect()
        return frame

    frame = async_to_sync(snapshot)()

    assert frame["agents"][0]["call"]["caller"] == "Maya Chen"
    assert list(
        ContextAccess.objects.values_list("customer_id", "username", "reason", "call_id")
    ) == [(maya.id, "morgan", "supervisor", call.id)]


@pytest.mark.django_db
def test_a_calls_story_is_shown_to_the_agent_only_while_it_is_theirs_and_audited(
    queue, make_agent, make_customer
):
    dana = make_agent("dana", status="available")
    maya = make_customer("Maya Chen", consent="open")
    call = arrive(queue=queue, customer=maya, publish=False)
    router.route_call(call.id)
    offer = Offer.objects.get(call=call, state=OfferState.OFFERED)
    client = Client()
    client.force_login(dana.user)
    path = f"/api/calls/{call.telephony_call_id}/"
    popped = ContextAccess.objects.count()

    ringing = client.get(path)
    Offer.objects.filter(id=offer.id).update(state=OfferState.DECLINED)
    declined = client.get(path)

    assert ringing.status_code == 200
    assert ringing.json()["from"] == "+14155550123"
    assert declined.status_code == 403
    assert list(
        ContextAccess.objects.order_by("id")[popped:].values_list(
            "customer_id", "reason", "call_id"
        )
    ) == [(maya.id, "offer", call.id)]
    client.force_login(_supervisor())
    assert client.get(path).status_code == 200
    assert ContextAccess.objects.filter(reason="supervisor", call_id=call.id).count() == 1


@pytest.mark.django_db
def test_an_agent_no_longer_sees_a_call_that_ended_before_their_last_one(
    queue, make_agent, make_customer
):
    dana = make_agent("dana", status="available")
    maya = make_customer("Maya Chen")
    old = _talking(queue, dana, maya, "CA-old")
    Call.objects.filter(id=old.id).update(state="ended", ended_at=timezone.now())
    client = Client()
    client.force_login(dana.user)

    assert client.get("/api/calls/CA-old/").status_code == 403
    assert not ContextAccess.objects.exists()


@pytest.mark.django_db
def test_admin_lists_and_searches_record_every_customer_they_show(client, make_customer):
    root = User.objects.create_superuser("root", password="pw-root")
    maya = make_customer("Maya Chen")
    leo = make_customer("Leo Chen", phones=["+14155550999"])
    make_customer("Someone Else", phones=["+14155550777"])
    CallNote.objects.create(customer=leo, text="Lily's birthday shoes")
    client.force_login(root)

    pages = [
        ("/admin/customers/customer/", {"q": "Chen"}),
        ("/admin/customers/callnote/", {"q": "birthday"}),
        ("/admin/customers/phonenumber/", {"q": "+14155550123"}),
    ]
    for path, query in pages:
        assert client.get(path, query).status_code == 200

    shown = list(ContextAccess.objects.order_by("id").values_list("customer_id", "reason"))
    assert sorted(shown) == sorted(
        [(maya.id, "admin"), (leo.id, "admin"), (leo.id, "admin"), (maya.id, "admin")]
    )


@pytest.mark.django_db
def test_the_call_admin_list_search_and_page_are_audited_reads(client, make_customer, queue):
    from routing.models import Call

    root = User.objects.create_superuser("root", password="pw-root")
    maya = make_customer("Maya Chen")
    call = Call.objects.create(
        telephony_call_id="CA-admin", from_e164="+14155550123", queue=queue, customer=maya
    )
    Call.objects.create(telephony_call_id="CA-stranger", from_e164="+12125550100", queue=queue)
    client.force_login(root)

    assert client.get("/admin/routing/call/").status_code == 200
    assert client.get("/admin/routing/call/", {"q": "Maya"}).status_code == 200
    assert client.get(f"/admin/routing/call/{call.pk}/change/").status_code == 200

    shown = list(ContextAccess.objects.values_list("customer_id", "reason"))
    assert shown == [(maya.id, "admin")] * 3
