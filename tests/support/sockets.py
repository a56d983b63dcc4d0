"""What the socket tests share: a logged-in browser's headers and a channel layer per test."""

import pytest
from channels.layers import channel_layers
from django.contrib.auth.models import User
from django.test import Client


def socket_headers(user: User | None) -> list[tuple[bytes, bytes]]:
    """The headers a browser on localhost sends when it opens a socket, logged in as `user`."""
    headers = [(b"origin", b"http://localhost"), (b"host", b"localhost")]
    if user is not None:
        client = Client()
        client.force_login(user)
        headers.append((b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode()))
    return headers


@pytest.fixture(autouse=True)
def fresh_channel_layer():
    """Each test runs its own event loop; a layer whose Redis connections were opened on an
    earlier test's loop must not be reused on this one."""
    channel_layers.backends.clear()
    yield
    channel_layers.backends.clear()
