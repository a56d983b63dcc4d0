"""The webhook's intake (telephony.signed_events.intake): under the ASGI server,
`POST /api/telephony/events/` is answered on the event loop. It records the event durably, then
a worker applies it.

Requests are signed by `standardwebhooks` and sent through the ASGI application with httpx. The
intake has its own database connection, so these tests commit (transactional_db)."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import httpx
import psycopg
import pytest
from django.db import connection, transaction
from django.test import Client
from django.utils import timezone
from standardwebhooks import Webhook

from infrastructure import dispatch
from infrastructure.database import on_loop
from infrastructure.schedules import WhileAnythingToDo
from routing import handoff
from routing.models import Call
from routing.states import CallState
from telephony import applying, selectors, tasks
from telephony.models import CallEvent
from telephony.signed_events.intake import TelephonyEventIntake
from tests.support.routing import running_workers, tasks_published, wait_until
from tests.support.telephony import EVENTS_URL, event, ringing

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("webhook_secret")]


@pytest.fixture
def secret(settings) -> str:
    """The webhook's signing secret (`webhook_secret` set it)."""
    return settings.TELEPHONY_WEBHOOK_SECRET[0]


AN_EVENT_RECEIVED_A_MINUTE_AGO = (
    "UPDATE telephony_callevent SET received_at = received_at - interval '1 minute'"
)


async def _not_for_django(scope, receive, send):
    raise AssertionError(f"{scope['method']} {scope['path']} reached Django")


def signed(secret: str, payload, *, webhook_id: str | None = None, **headers) -> dict:
    body = payload if isinstance(payload, str) else json.dumps(payload)
    webhook_id = webhook_id or f"msg_{uuid.uuid4().hex}"
    now = datetime.now(tz=UTC)
    return {
        "content": body.encode(),
        "headers": {
            "content-type": "application/json",
            "webhook-id": webhook_id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": Webhook(secret).sign(webhook_id, now, body),
            **headers,
        },
    }


def post_to_intake(*requests: dict, app=None) -> list[httpx.Response]:
    """Each request through the intake in turn, on an event loop in a thread of its own, as
    under the server."""
    intake = app or TelephonyEventIntake(_not_for_django)

    async def post_all() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=intake)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            return [await client.post(EVENTS_URL, **request) for request in requests]

    with ThreadPoolExecutor(max_workers=1) as server_thread:
        return server_thread.submit(asyncio.run, post_all()).result()


def test_an_event_is_recorded_before_the_202_and_its_task_published(secret, queue):
    with tasks_published() as published:
        [response] = post_to_intake(signed(secret, ringing("CA1"), webhook_id="msg_1"))

    assert response.status_code == 202
    assert response.json() == {"status": "accepted", "duplicate": False}
    recorded = CallEvent.objects.get(webhook_id="msg_1")
    assert published == [(applying.APPLY_RECORDED_EVENT, (recorded.id,))]
    # Recorded, not applied: the call exists, nothing has moved it yet.
    assert recorded.fields_to_apply["from_number"] == "+14155550123"
    assert Call.objects.get(telephony_call_id="CA1").state == CallState.RINGING


def test_the_worker_applies_the_event_and_routes_the_call_in_the_same_task(secret, queue):
    with tasks_published():
        post_to_intake(signed(secret, ringing("CA1"), webhook_id="msg_1"))
    recorded = CallEvent.objects.get(webhook_id="msg_1")

    with tasks_published() as published:
        tasks.apply_recorded_event(recorded.id)

    call = Call.objects.get(telephony_call_id="CA1")
    assert (call.state, call.queue, call.from_e164) == ("queued", queue, "+14155550123")
    recorded.refresh_from_db()
    assert (recorded.applied, recorded.outcome, recorded.fields_to_apply) == (True, "", None)
    # The router ran in this task (it found no agent and recorded why), with no second hop.
    assert handoff.ROUTE_CALL not in [name for name, _ in published]
    assert call.decisions.count() == 1


def test_a_task_run_twice_applies_the_event_once(secret, queue, sent):
    with tasks_published():
        post_to_intake(
            signed(secret, ringing("CA1")),
            signed(secret, event("call.ended", "CA1", reason="abandoned")),
        )
    ended = CallEvent.objects.get(type="call.ended")

    for event_id in [*CallEvent.objects.values_list("id", flat=True), ended.id]:
        tasks.apply_recorded_event(event_id)

    call = Call.objects.get(telephony_call_id="CA1")
    assert call.state == CallState.ABANDONED
    assert list(CallEvent.objects.values_list("applied", "fields_to_apply")) == [
        (True, None),
        (True, None),
    ]


def test_a_redelivery_is_a_duplicate_and_publishes_nothing_more(secret, queue):
    request = signed(secret, ringing("CA1"), webhook_id="msg_1")
    with tasks_published() as published:
        first, again = post_to_intake(request, request)

    assert (first.status_code, again.status_code) == (202, 202)
    assert again.json() == {"status": "accepted", "duplicate": True}
    assert len(published) == 1
    assert CallEvent.objects.count() == 1


def test_a_webhook_id_reused_for_another_event_is_a_409_naming_it(secret, queue):
    with tasks_published():
        first, reused = post_to_intake(
            signed(secret, ringing("CA1"), webhook_id="msg_1"),
            signed(secret, ringing("CA2"), webhook_id="msg_1"),
        )

    assert (first.status_code, reused.status_code) == (202, 409)
    assert reused.json()["errors"] == {"webhook-id": ["already used for a different event"]}
    assert CallEvent.objects.get().call.telephony_call_id == "CA1"


@pytest.mark.parametrize(
    "case",
    [
        "unsigned",
        "stale signature",
        "not json media type",
        "too large",
        "not json",
        "not an object",
        "fields missing",
        "bad values",
        "nested too deep",
        "webhook id too long",
        "NUL in a field",
    ],
)
def test_a_bad_request_gets_the_views_own_answer(secret, queue, case, settings):
    settings.ALLOWED_HOSTS = ["testserver"]
    payload = ringing("CA-bad")
    request = signed(secret, payload)
    if case == "unsigned":
        del request["headers"]["webhook-signature"]
    elif case == "stale signature":
        old = datetime.now(tz=UTC) - timedelta(minutes=10)
        request["headers"]["webhook-timestamp"] = str(int(old.timestamp()))
        request["headers"]["webhook-signature"] = Webhook(secret).sign(
            request["headers"]["webhook-id"], old, request["content"].decode()
        )
    elif case == "not json media type":
        request["headers"]["content-type"] = "text/plain"
    elif case == "too large":
        request = signed(secret, {**payload, "metadata": {"note": "x" * 70_000}})
    elif case == "not json":
        request = signed(secret, '{"type": "call.ringing",')
    elif case == "not an object":
        request = signed(secret, "[1, 2]")
    elif case == "fields missing":
        request = signed(secret, {"type": "call.ringing", "call_id": "CA-bad"})
    elif case == "bad values":
        request = signed(secret, {**payload, "type": "call.exploded", "occurred_at": "yesterday"})
    elif case == "nested too deep":
        deep: object = "x"
        for _ in range(40):
            deep = [deep]
        request = signed(secret, {**payload, "metadata": {"deep": deep}})
    elif case == "webhook id too long":
        request = signed(secret, payload, webhook_id="m" * 300)
    elif case == "NUL in a field":
        request = signed(secret, {**payload, "to": "+1800\u0000"})

    [from_intake] = post_to_intake(request)
    from_view = Client().generic(
        "POST",
        EVENTS_URL,
        request["content"],
        content_type=request["headers"]["content-type"],
        headers={k: v for k, v in request["headers"].items() if k != "content-type"},
    )

    assert 400 <= from_intake.status_code < 500
    assert (from_intake.status_code, from_intake.json()) == (
        from_view.status_code,
        from_view.json(),
    )
    assert from_intake.headers.get("www-authenticate") == from_view.headers.get("WWW-Authenticate")
    assert not CallEvent.objects.exists()


def test_a_sender_over_its_rate_is_told_when_to_retry(secret, queue, settings):
    settings.TELEPHONY_RATE_LIMIT = "2/m"
    with tasks_published():
        answers = post_to_intake(*(signed(secret, ringing(f"CA{n}")) for n in range(3)))

    assert [answer.status_code for answer in answers] == [202, 202, 429]
    assert int(answers[2].headers["retry-after"]) >= 1
    assert CallEvent.objects.count() == 2


def test_with_the_broker_away_the_event_is_kept_and_applied_once_its_task_is_overdue(
    secret, queue, monkeypatch
):
    async def broker_away(task_name, *args):
        return False

    monkeypatch.setattr(dispatch, "publish_on_loop", broker_away)
    [response] = post_to_intake(signed(secret, ringing("CA1")))
    assert response.status_code == 202
    assert not selectors.anything_to_apply(now=timezone.now())

    later = timezone.now() + selectors.EVENT_TASK_LOST_AFTER
    assert selectors.anything_to_apply(now=later)
    with connection.cursor() as cursor:
        cursor.execute(AN_EVENT_RECEIVED_A_MINUTE_AGO)
    monkeypatch.undo()
    with tasks_published():
        tasks.apply_events_waiting_too_long()

    assert Call.objects.get(telephony_call_id="CA1").state == CallState.QUEUED
    assert not selectors.anything_to_apply(now=later)


def test_beat_sends_the_overdue_events_task_only_while_one_waits(secret, queue):
    schedule = WhileAnythingToDo(
        timedelta(seconds=1), check="telephony.selectors.anything_to_apply"
    )
    long_ago = timezone.now() - timedelta(minutes=5)
    assert not schedule.is_due(long_ago).is_due

    with tasks_published():
        post_to_intake(signed(secret, ringing("CA1")))
    with connection.cursor() as cursor:
        cursor.execute(AN_EVENT_RECEIVED_A_MINUTE_AGO)

    assert schedule.is_due(long_ago).is_due
    # Beat keeps its schedule in a file: what it asks survives the round trip.
    import pickle

    assert pickle.loads(pickle.dumps(schedule)).check == schedule.check


def test_the_asgi_application_answers_events_with_the_intake(secret, queue):
    from rapport.asgi import application

    with tasks_published() as published:
        [response] = post_to_intake(signed(secret, ringing("CA1")), app=application)

    assert response.json() == {"status": "accepted", "duplicate": False}
    assert [name for name, _ in published] == [applying.APPLY_RECORDED_EVENT]


def test_a_call_through_the_intake_is_applied_by_a_real_worker(secret, queue, tmp_path, make_agent):
    """Ringing, answered, ended, sent as fast as the client can: the worker applies all three,
    in any order they reach it, and the call ends with the agent who answered it."""
    agent = make_agent("dana", status="offline")
    with running_workers(tmp_path):
        answers = post_to_intake(
            signed(secret, ringing("CA1")),
            signed(secret, event("call.answered", "CA1", agent=agent.telephony_identity)),
            signed(secret, event("call.ended", "CA1", reason="completed")),
        )
        assert [answer.status_code for answer in answers] == [202, 202, 202]

        def all_applied():
            """every event applied"""
            return not CallEvent.objects.filter(fields_to_apply__isnull=False).exists()

        wait_until(all_applied, timeout=30)

    call = Call.objects.get(telephony_call_id="CA1")
    assert (call.state, call.agent_id) == (CallState.ENDED, agent.id)
    assert list(CallEvent.objects.values_list("applied", flat=True)) == [True, True, True]


def test_with_the_database_out_of_reach_the_event_is_refused_with_503_and_retry_after(
    secret, queue, monkeypatch
):
    async def connect_to_nothing():
        # A port nothing listens on: the connection is refused, as while PostgreSQL restarts.
        return await psycopg.AsyncConnection.connect(
            "host=127.0.0.1 port=9 dbname=x user=x connect_timeout=1"
        )

    monkeypatch.setattr(on_loop, "_connect", connect_to_nothing)
    on_loop.close_all()

    [response] = post_to_intake(signed(secret, ringing("CA1")))

    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"
    assert "try again" in response.json()["detail"]


def _row_locked_for(seconds: float, call_id: str) -> threading.Thread:
    """Another transaction holds `call_id`'s row for `seconds` (a router, a slow admin), from
    the moment this returns."""
    locked = threading.Event()

    def hold() -> None:
        try:
            with transaction.atomic():
                Call.objects.select_for_update().get(telephony_call_id=call_id)
                locked.set()
                time.sleep(seconds)
        finally:
            connection.close()

    holder = threading.Thread(target=hold)
    holder.start()
    assert locked.wait(10)
    return holder


def test_a_locked_call_stalls_neither_the_intake_nor_its_own_sender_for_long(secret, queue):
    post_to_intake(signed(secret, ringing("CA-locked")))
    holder = _row_locked_for(4.0, "CA-locked")

    async def both_at_once() -> list[tuple[int, float]]:
        intake = TelephonyEventIntake(_not_for_django)
        transport = httpx.ASGITransport(app=intake)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:

            async def timed(request: dict, after: float) -> tuple[httpx.Response, float]:
                await asyncio.sleep(after)
                started = time.monotonic()
                response = await client.post(EVENTS_URL, **request)
                return response, time.monotonic() - started

            return await asyncio.gather(
                timed(signed(secret, event("call.held", "CA-locked"), webhook_id="msg_held"), 0),
                timed(signed(secret, ringing("CA-other"), webhook_id="msg_other"), 0.2),
            )

    with ThreadPoolExecutor(max_workers=1) as server_thread:
        (locked, locked_took), (other, other_took) = server_thread.submit(
            asyncio.run, both_at_once()
        ).result()
    holder.join()

    # The unrelated call's event is recorded at once, not after the lock (4 s).
    assert (other.status_code, CallEvent.objects.filter(webhook_id="msg_other").exists()) == (
        202,
        True,
    )
    assert other_took < 1.0
    # Its own call's event waits no longer than the lock timeout (2 s), and is to be retried.
    assert locked.status_code == 503
    assert locked.headers["retry-after"] == "5"
    assert locked_took < 3.5
    assert not CallEvent.objects.filter(webhook_id="msg_held").exists()
    [retried] = post_to_intake(
        signed(secret, event("call.held", "CA-locked"), webhook_id="msg_held")
    )
    assert retried.status_code == 202
