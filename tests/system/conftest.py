"""What the `call.connect` tests share: a Redis of their own that they stop and start, and a
real HTTP server playing the telephony system's control URL. (test_soak.py keeps its own: a
durable Redis, and a control URL that records each `call.connect` it is told.) What the PBX
tests share (test_pbx.py, test_softphone.py, inside their network namespace): Rapport's web
server and the PBX configured for each other (tests/support/sip.py)."""

import threading
from http.server import ThreadingHTTPServer

import pytest

from routing.models import Queue
from tests.support import sip
from tests.support.dedicated_redis import DedicatedRedis
from tests.support.sip_people import QUEUE_NUMBER
from tests.support.telephony import TelephonyControl


@pytest.fixture(scope="module")
def dedicated_redis(tmp_path_factory):
    redis = DedicatedRedis(tmp_path_factory.mktemp("redis"))
    redis.start()
    yield redis
    redis.stop()


@pytest.fixture(scope="module")
def control_url():
    server = ThreadingHTTPServer(("127.0.0.1", 0), TelephonyControl)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/control"
    server.shutdown()


@pytest.fixture(scope="module")
def rapport_and_pbx(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock(), sip.rapport_and_pbx() as both:
        yield both


@pytest.fixture(scope="module")
def rapport(rapport_and_pbx):
    return rapport_and_pbx[0]


@pytest.fixture(scope="module")
def pbx(rapport_and_pbx):
    return rapport_and_pbx[1]


@pytest.fixture
def line(db, pbx, rapport, request):
    """The queue whose number callers dial, and the PBX's route hint credential; the scenario's
    phones stop with it (their logs printed first if it failed)."""
    failed_before = request.session.testsfailed
    sip.allow_route_hint()
    yield Queue.objects.create(
        slug="loyalty", name="Loyalty", numbers=[QUEUE_NUMBER], offer_timeout_seconds=6
    )
    if request.session.testsfailed > failed_before:
        print(pbx.log_tail(), rapport.log_tail())
    pbx.close_phones()
    # Rapport took every Generic CTI event the PBX posted (a refused one is logged).
    assert "not taken" not in pbx.logs["kamailio"].read_text(), pbx.log_tail()
