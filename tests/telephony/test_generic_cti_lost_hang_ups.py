"""Generic CTI carries no time and its PBX never retries: a hang-up racing an answer is stamped
after it (the clock is read under the call's lock) and ends the call, and a hang-up the PBX never
sends is made up for by the sweep of silent calls, run by a real worker and beat."""

import threading
import time

import pytest
from django.db import connection, transaction
from django.test import Client

from routing.models import Agent, Call
from routing.states import AgentStatus, CallState
from telephony.models import CallEvent
from tests.support.generic_cti import TOKEN, answer, cti_url, new_call, send
from tests.support.routing import running_workers, wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]

MAYA = "+14155550123"
URL = f"/api/telephony/cti/{TOKEN}/"


@pytest.fixture(autouse=True)
def cti_settings(settings):
    settings.TELEPHONY_CTI_TOKEN = TOKEN


@pytest.fixture
def dana(make_agent) -> Agent:
    return make_agent("dana", extension="1001", status=AgentStatus.AVAILABLE)


def pbx_posts(event: str, **fields) -> int:
    """One Generic CTI request, form-encoded as a PBX posts it; its status."""
    body = {"event": event, "callId": "cti-1", "from": MAYA, "to": "+18005550100", **fields}
    return Client().post(URL, body).status_code


def waiting_on_a_lock() -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE wait_event_type = 'Lock' AND datname = current_database()"
        )
        return cursor.fetchone()[0] > 0


def test_a_hang_up_that_waited_for_an_answers_lock_is_stamped_after_it_and_ends_the_call(dana):
    assert pbx_posts("newCall", user="dana") == 200
    hang_up_answers: list[int] = []

    def hang_up() -> None:
        try:
            hang_up_answers.append(
                pbx_posts("hangup", cause="normalClearing", answeringNumber="1001")
            )
        finally:
            connection.close()

    # The answer is being applied (its transaction holds the call) when the hang-up comes in.
    with transaction.atomic():
        Call.objects.select_for_update().get(telephony_call_id="cti-1")
        hanging_up = threading.Thread(target=hang_up)
        hanging_up.start()
        deadline = time.monotonic() + 10
        while not waiting_on_a_lock():
            assert time.monotonic() < deadline, "the hang-up never waited for the call"
            time.sleep(0.02)
        assert pbx_posts("answer", answeringNumber="1001") == 200
    hanging_up.join(20)

    assert hang_up_answers == [200]
    answered = CallEvent.objects.get(type="call.answered")
    ended = CallEvent.objects.get(type="call.ended")
    assert ended.occurred_at > answered.occurred_at
    assert (answered.applied, ended.applied) == (True, True)
    call = Call.objects.get(telephony_call_id="cti-1")
    assert (call.state, call.end_reason) == (CallState.ENDED, "completed")
    assert Agent.objects.get(id=dana.id).status == AgentStatus.WRAP_UP


@pytest.mark.slow
@pytest.mark.usefixtures("cti_client_python")
def test_a_hang_up_the_pbx_never_sends_is_made_up_for_by_the_sweep(
    live_server, dana, monkeypatch, tmp_path, settings
):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    url = cti_url(live_server.url)
    answers = send(
        url,
        new_call("cti-talked", caller=MAYA, user="dana"),
        answer("cti-talked", caller=MAYA, answering_number="1001"),
        new_call("cti-rang", caller="+14155550999", user="dana"),
    )
    assert [each["status"] for each in answers] == [200, 200, 200]
    assert Agent.objects.get(id=dana.id).status == AgentStatus.BUSY
    # Neither hang-up ever comes.
    monkeypatch.setenv("TELEPHONY_SILENT_CALL_SECONDS", "2")

    with running_workers(tmp_path):

        def both_over():
            """both calls ended by the worker's sweep"""
            return not Call.objects.exclude(state__in=[CallState.ENDED, CallState.ABANDONED])

        wait_until(both_over, timeout=60, every=0.2)

    talked = Call.objects.get(telephony_call_id="cti-talked")
    rang = Call.objects.get(telephony_call_id="cti-rang")
    assert (talked.state, talked.end_reason) == (CallState.ENDED, "lost")
    assert (rang.state, rang.end_reason) == (CallState.ABANDONED, "lost")
    assert Agent.objects.get(id=dana.id).status == AgentStatus.WRAP_UP
