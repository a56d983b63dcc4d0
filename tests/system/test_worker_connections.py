"""The router's worker keeps its PostgreSQL connection from one task to the next (a new one cost
each routed call 6-7 ms and its prepared statements), and still replaces one that broke."""

import uuid

import pytest
from django.db import connection

from routing.models import Offer
from routing.states import OfferState
from tests.support.routing import arrive, running_workers, wait_until

pytestmark = [
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("fast_logins"),
]


@pytest.fixture
def worker_backends(tmp_path, monkeypatch):
    """A worker whose connections libpq names, so the test can find them among the server's
    (a worker killed by an earlier test may leave its own for a moment); their backends' pids.
    The name reaches this process's own next connection too: it is left out."""
    name = f"rapport-worker-test-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("PGAPPNAME", name)

    def backends() -> list[int]:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pid FROM pg_stat_activity WHERE application_name = %s"
                " AND pid <> pg_backend_pid() ORDER BY pid",
                [name],
            )
            return [pid for (pid,) in cursor.fetchall()]

    with running_workers(tmp_path, concurrency=1, beat=False):
        yield backends


def offered(call) -> Offer | None:
    return Offer.objects.filter(call=call, state=OfferState.OFFERED).first()


def test_one_connection_routes_call_after_call(worker_backends, make_agent, queue):
    for name in ("ana", "ben", "cy"):
        make_agent(name, status="available")

    first = arrive(queue=queue, number="+14155550101")
    wait_until(lambda: offered(first))
    backends = wait_until(worker_backends)
    second = arrive(queue=queue, number="+14155550102")
    wait_until(lambda: offered(second))

    assert len(backends) == 1
    assert worker_backends() == backends


def test_a_connection_the_server_dropped_is_replaced_before_the_next_call(
    worker_backends, make_agent, queue
):
    for name in ("ana", "ben"):
        make_agent(name, status="available")
    first = arrive(queue=queue, number="+14155550201")
    wait_until(lambda: offered(first))
    (backend,) = wait_until(worker_backends)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", [backend])

    second = arrive(queue=queue, number="+14155550202")

    assert wait_until(lambda: offered(second))
    assert worker_backends() not in ([], [backend])
