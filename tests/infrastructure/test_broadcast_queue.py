"""Screen messages are handed to the process's sending thread after commit: the change's own
thread (a webhook request, a router task) does not wait for Redis, and messages still go out in
the order they were queued."""

import socket
import threading
import time

import pytest
from asgiref.sync import async_to_sync
from channels.layers import channel_layers, get_channel_layer

from infrastructure import broadcast
from infrastructure.groups import agent_group

pytestmark = pytest.mark.django_db


def test_messages_go_out_in_the_order_they_were_queued(django_capture_on_commit_callbacks):
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(agent_group(4242), channel)

    with django_capture_on_commit_callbacks(execute=True):
        for n in range(30):
            broadcast.send_to_agent(4242, {"type": "status", "n": n})

    assert broadcast.flush()

    async def receive_all() -> list[int]:
        return [(await layer.receive(channel))["message"]["n"] for _ in range(30)]

    assert async_to_sync(receive_all)() == list(range(30))


@pytest.fixture
def redis_that_never_answers(settings):
    """A server that accepts connections and says nothing, as a hung Redis would."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    accepted = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    port = server.getsockname()[1]
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [{"address": f"redis://127.0.0.1:{port}/0", "socket_timeout": 3}]},
        }
    }
    channel_layers.backends.clear()
    yield
    stop.set()
    thread.join()
    for connection in accepted:
        connection.close()
    server.close()
    # What was queued for the silent server is given up on before the next test sends.
    assert broadcast.flush(timeout=20)
    channel_layers.backends.clear()


def test_the_change_does_not_wait_for_the_screens(
    redis_that_never_answers, django_capture_on_commit_callbacks
):
    started = time.monotonic()
    with django_capture_on_commit_callbacks(execute=True):
        broadcast.send_to_agent(4242, {"type": "status"})
        broadcast.notify_supervisors(queue_id=1)

    assert time.monotonic() - started < 0.5
