"""Publishing a task reuses its channel's Redis client (kombu built one per publish, a quarter of
a publish's CPU, paid by the webhook on every new call), reads Celery's settings from a plain
dict and declares no queue, and tasks still reach the worker."""

import pytest
import redis
from celery import current_app
from django.conf import LazySettings
from kombu import Producer

from infrastructure import dispatch
from infrastructure.broker import Transport
from routing.models import Offer
from routing.states import OfferState
from tests.support.routing import arrive, running_workers, wait_until

pytestmark = [
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("fast_logins"),
]


def test_the_broker_connection_uses_this_transport():
    with current_app.connection_for_write() as connection:
        assert isinstance(connection.transport, Transport)


def test_a_publish_looks_up_no_django_setting_and_declares_no_queue(monkeypatch):
    assert dispatch.publish("routing.sweep")
    looked_up, declared = [], []
    django_lookup = LazySettings.__getattr__

    def counted_lookup(self, name):
        looked_up.append(name)
        return django_lookup(self, name)

    monkeypatch.setattr(LazySettings, "__getattr__", counted_lookup)
    monkeypatch.setattr(Producer, "maybe_declare", lambda self, entity, **kw: declared.append(1))

    assert dispatch.publish("routing.sweep")

    # Django caches a setting it found; each miss (Celery asked under its several names) came
    # back here, as an AttributeError, on every publish.
    assert looked_up == []
    assert declared == []


def test_calls_are_published_without_a_new_redis_client_each_and_routed(
    tmp_path, monkeypatch, make_agent, queue
):
    for name in ("ana", "ben", "cy"):
        make_agent(name, status="available")
    clients_made = []
    made = redis.Redis.__init__

    def counted(self, *args, **kwargs):
        clients_made.append(self)
        made(self, *args, **kwargs)

    def offered(call) -> bool:
        return Offer.objects.filter(call=call, state=OfferState.OFFERED).exists()

    with running_workers(tmp_path, concurrency=1, beat=False):
        first = arrive(queue=queue, number="+14155550301")
        wait_until(lambda: offered(first))
        monkeypatch.setattr(redis.Redis, "__init__", counted)
        later = [arrive(queue=queue, number=f"+1415555031{n}") for n in range(2)]
        wait_until(lambda: all(offered(call) for call in later))

    assert clients_made == []
