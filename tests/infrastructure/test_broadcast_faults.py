"""A screen message that cannot go out never fails the change that committed before it."""

import pytest
from channels.layers import channel_layers

from infrastructure import broadcast
from routing.models import Call
from tests.support.routing import tasks_published
from tests.support.telephony import event, ringing

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("webhook_secret")]


@pytest.fixture
def channel_layer_redis_gone(settings):
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            # Nothing listens on port 1: every send fails to connect.
            "CONFIG": {"hosts": ["redis://127.0.0.1:1/0"]},
        }
    }
    channel_layers.backends.clear()
    yield
    channel_layers.backends.clear()


def test_the_webhook_answers_202_when_the_screens_cannot_be_told(
    phone_system, make_agent, channel_layer_redis_gone, caplog, django_capture_on_commit_callbacks
):
    make_agent("dana", extension="1001", status="available")
    with tasks_published():
        phone_system.post(ringing("CA-no-screens"))

    with tasks_published(), django_capture_on_commit_callbacks(execute=True):
        response = phone_system.post(event("call.answered", "CA-no-screens", agent="1001"))

    assert response.status_code == 202
    assert Call.objects.get(telephony_call_id="CA-no-screens").state == "connected"
    assert broadcast.flush()
    assert "socket message to agent." in caplog.text
