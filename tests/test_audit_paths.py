"""Every path that shows a customer is audited and ends with the session: a socket whose login
has ended gets no more screen-pops, the supervisor wall, a call's routing story and the admin's
lists each record who saw whom, and the wall shows only what consent allows."""

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import Group, User
from django.test import Client

from rapport.asgi import application
from routing import router
from routing.models import Offer
from routing.states import OfferState
from tests.routing_helpers import FAST_PASSWORD_HASHERS, arrive
from tests.sockets import fresh_channel_layer  # noqa: F401 (fixture)


@pytest.fixture(autouse=True)
def fast_logins(settings):
    settings.PASSWORD_HASHERS = FAST_PASSWORD_HASHERS


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
def test_logging_out_closes_the_agent_socket_and_the_next_offer_never_reaches_it(
    make_agent, queue
):
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
def test_a_deactivated_agents_socket_is_closed_instead_of_sent_the_offer(make_agent, queue):
    dana = make_agent("dana", status="available")
    _, headers = _logged_in(dana.user)

    async def scenario():
        socket = WebsocketCommunicator(application, "/ws/agent/", headers=headers)
        connected, _ = await socket.connect()
        assert connected
        assert (await socket.receive_json_from(timeout=5))["type"] == "state"
        await database_sync_to_async(User.objects.filter(id=dana.user.id).update)(
            is_active=False
        )
        offer = await database_sync_to_async(_ring)(queue)
        return offer, await _closed_before_anything_else(socket)

    offer, code = async_to_sync(scenario)()
    assert offer.agent_id == dana.id
    assert code == 4403


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
