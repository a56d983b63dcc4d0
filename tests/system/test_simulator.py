"""The telephony simulator against the real thing: uvicorn, a Celery worker with beat, PostgreSQL
and Redis on one side; the simulator on the other, through the public contracts only (signed
webhooks, `call.connect` pushed or pulled, the agent socket, the notes API). Its own parts alone:
tests/simulator/test_simulator.py."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from io import StringIO
from subprocess import Popen

import httpx
import pytest
from django.core.management import call_command
from django.db.models import QuerySet
from django.utils import timezone
from standardwebhooks import Webhook

from customers.models import CallNote
from development.management.commands.seed_demo import DEMO_PASSWORD
from routing import wrap_up
from routing.models import AgentStatusChange, Call, Callback, CallbackState
from routing.states import CallState
from simulator import BotLogin, Caller, SecondsRange, Simulation, SimulationConfig, phone_system
from simulator.callers import NEW, RETURNING, CallerDirectory
from simulator.signing import signed_headers
from telephony.models import CallEvent, ConnectAttempt
from tests.support.routing import database_url_for_workers, wait_until
from tests.support.servers import REPO, WEBHOOK_SECRET, free_port, served
from tests.support.simulator import report_figures

QUEUE_NUMBER = "+18005550100"
MAYA = "+14155550123"
STRANGER = "+12025550111"
HOUSEHOLD = "+14155550142"

THROUGH_RAPPORT = (
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(90),
)


@dataclass
class RapportWithControlUrl:
    base_url: str
    control_port: int


@pytest.fixture(scope="module")
def rapport(django_db_setup, django_db_blocker) -> Iterator[RapportWithControlUrl]:
    """Rapport whose worker pushes `call.connect` to a port a test's simulator may listen on."""
    control_port = free_port()
    control_url = {"TELEPHONY_CONTROL_URL": f"http://127.0.0.1:{control_port}/control/"}
    with (
        django_db_blocker.unblock(),
        served(with_worker=True, extra_env=control_url) as servers,
    ):
        yield RapportWithControlUrl(servers.base_url, control_port)


def simulation_config(rapport: RapportWithControlUrl, **choices) -> SimulationConfig:
    """Short patience, talk and pauses: a call's whole life in a second or two."""
    return SimulationConfig(
        base_url=rapport.base_url,
        secret=WEBHOOK_SECRET,
        queue_numbers=(QUEUE_NUMBER,),
        patience=SecondsRange(20, 20),
        talk=SecondsRange(0.3, 0.6),
        bot_pause=SecondsRange(0.1, 0.3),
        poll_seconds=0.3,
        **choices,
    )


async def eventually(predicate: Callable[[], bool], timeout: float = 20) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.05)


def events_applied() -> None:
    """Wait for the worker to apply every event the webhook recorded: the simulator's events
    are answered 202 once recorded, and applied a moment later (telephony.intake)."""

    def none_waiting():
        """every recorded event applied"""
        return not CallEvent.objects.filter(fields_to_apply__isnull=False).exists()

    wait_until(none_waiting, timeout=20)


def events_of(call: Call) -> list[CallEvent]:
    return list(CallEvent.objects.filter(call=call).order_by("occurred_at", "id"))


def system_test(function: Callable) -> Callable:
    """A test against the running servers (their rows committed where the servers see them)."""
    for mark in THROUGH_RAPPORT:
        function = mark(function)
    return function


@system_test
def test_a_bot_answers_a_simulated_call_and_leaves_a_note(
    rapport, make_agent, make_customer, queue
):
    codes = {code.id: code.label for code in wrap_up.give_default_codes(queue)}
    sam = make_agent("sam", extension="1002")
    maya = make_customer("Maya Chen", phones=(MAYA,))
    config = simulation_config(
        rapport, bots=(BotLogin("sam", "pw-sam"),), control_port=rapport.control_port
    )

    async def scenario():
        async with Simulation(config) as simulation:
            bot = simulation.bots[0]
            call = simulation.place_call(Caller(MAYA, RETURNING))
            await eventually(lambda: call.agent is not None)
            retried_push = await push_connect(config, call.call_id, agent="1002")
            await asyncio.wait_for(call.over.wait(), 20)
            await eventually(lambda: bot.notes_written == 1 and bot.status == "available")
            return call.call_id, retried_push.status_code, simulation.tally.report()

    call_id, retried_push_status, report = asyncio.run(scenario())
    events_applied()

    call = Call.objects.get(telephony_call_id=call_id)
    assert (call.state, call.end_reason, call.agent_id) == (CallState.ENDED, "completed", sam.id)
    events = events_of(call)
    assert [event.type for event in events] == ["call.ringing", "call.answered", "call.ended"]
    assert all(event.payload["metadata"] == {"simulated": True} for event in events)
    assert events[1].payload["agent"] == "1002"
    assert retried_push_status == 200
    assert ConnectAttempt.objects.filter(call=call, status_code=200).exists()
    note = CallNote.objects.get(customer=maya)
    assert (note.call_id, note.author_id) == (call.id, sam.user_id)
    # The bot chose one of the queue's wrap-up codes before Ready, so the wall counts it.
    assert codes[call.wrap_up_code_id] == call.wrap_up_label
    assert AgentStatusChange.objects.filter(agent=sam, status="available", reason="ready").exists()
    assert (report.placed, report.answered, report.abandoned) == (1, 1, 0)
    assert report.offers_measured == 1
    assert 0 < report.ring_to_offer_p50_ms < 10_000


async def push_connect(config: SimulationConfig, call_id: str, *, agent: str) -> httpx.Response:
    """The same `call.connect` again, as Rapport sends it when it retries a push."""
    body = json.dumps({"type": "call.connect", "call_id": call_id, "agent": agent})
    headers = {"content-type": "application/json", **signed_headers(Webhook(config.secret), body)}
    async with httpx.AsyncClient() as client:
        return await client.post(config.control_url, content=body, headers=headers)


@system_test
def test_a_caller_whose_patience_runs_out_abandons_the_call(rapport, queue):
    config = simulation_config(rapport)

    async def scenario():
        async with Simulation(config) as simulation:
            call = simulation.place_call(Caller(STRANGER, NEW), patience_seconds=1)
            await asyncio.wait_for(call.over.wait(), 10)
            return call.call_id, simulation.tally.report()

    call_id, report = asyncio.run(scenario())
    events_applied()

    call = Call.objects.get(telephony_call_id=call_id)
    assert (call.state, call.end_reason) == (CallState.ABANDONED, "abandoned")
    assert [event.type for event in events_of(call)] == ["call.ringing", "call.ended"]
    assert (report.placed, report.answered, report.abandoned) == (1, 0, 1)


@system_test
def test_without_a_control_url_the_simulator_pulls_whom_to_connect(rapport, make_agent):
    sam = make_agent("sam", extension="1002")
    config = simulation_config(rapport, bots=(BotLogin("sam", "pw-sam"),))

    async def scenario():
        async with Simulation(config) as simulation:
            call = simulation.place_call(Caller(STRANGER, NEW))
            await asyncio.wait_for(call.over.wait(), 20)
            return call.call_id, call.agent

    call_id, connected_to = asyncio.run(scenario())
    events_applied()

    call = Call.objects.get(telephony_call_id=call_id)
    assert connected_to == "1002"
    assert (call.state, call.agent_id) == (CallState.ENDED, sam.id)
    # Nobody listened on the control URL: the agent came from the signed GET.
    assert not ConnectAttempt.objects.filter(call=call, status_code=200).exists()


@system_test
def test_a_bot_whose_socket_drops_reconnects_and_takes_the_next_call(rapport, make_agent):
    sam = make_agent("sam", extension="1002")
    config = simulation_config(
        rapport, bots=(BotLogin("sam", "pw-sam"),), control_port=rapport.control_port
    )

    async def scenario():
        async with Simulation(config) as simulation:
            bot = simulation.bots[0]
            dropped = bot.socket
            await dropped.close()
            await eventually(lambda: bot.socket not in (None, dropped) and bot.available.is_set())
            call = simulation.place_call(Caller(STRANGER, NEW))
            await asyncio.wait_for(call.over.wait(), 20)
            return call.call_id

    call_id = asyncio.run(scenario())
    events_applied()
    call = Call.objects.get(telephony_call_id=call_id)
    assert (call.state, call.agent_id) == (CallState.ENDED, sam.id)


@system_test
def test_pulling_never_connects_a_caller_to_their_offline_last_agent(
    rapport, queue, make_agent, make_customer
):
    dana = make_agent("dana", extension="1001")
    maya = make_customer("Maya Chen", phones=(MAYA,))
    Call.objects.create(
        telephony_call_id="earlier",
        from_number=MAYA,
        queue=queue,
        customer=maya,
        agent=dana,
        state=CallState.ENDED,
        connected_at=timezone.now() - timedelta(days=3),
    )
    config = simulation_config(rapport)

    async def scenario():
        async with Simulation(config) as simulation:
            call = simulation.place_call(Caller(MAYA, RETURNING), patience_seconds=2)
            await asyncio.wait_for(call.over.wait(), 10)
            return call.agent

    assert asyncio.run(scenario()) is None, "connected to an agent nobody offered the call to"


@system_test
def test_the_command_runs_a_short_soak_and_reports_what_it_saw(
    rapport, queue, make_agent, make_customer
):
    queue.last_agent_wait_seconds = 2
    queue.save()
    bots = [make_agent("sam", extension="1002"), make_agent("alex", extension="1003")]
    for bot in bots:
        bot.user.set_password(DEMO_PASSWORD)
        bot.user.save()
    for index in range(4):
        customer = make_customer(f"Customer {index}", phones=(f"+1415555030{index}",))
        CallNote.objects.create(customer=customer, author=bots[0].user, text="Earlier call.")
    Call.objects.create(
        telephony_call_id="earlier",
        from_number="+14155550300",
        queue=queue,
        customer_id=CallNote.objects.first().customer_id,
        agent=bots[0],
        state=CallState.ENDED,
        connected_at=timezone.now() - timedelta(days=3),
    )
    make_customer("Household A", phones=(HOUSEHOLD,))
    make_customer("Household B", phones=(HOUSEHOLD,))
    output = StringIO()

    started = time.monotonic()
    call_command(
        "simulate",
        url=rapport.base_url,
        secret=WEBHOOK_SECRET,
        control_port=rapport.control_port,
        rate=40,
        minutes=0.12,
        bots="sam,alex",
        seed=3,
        report=True,
        patience_seconds=[6, 8],
        talk_seconds=[0.3, 1],
        bot_pause_seconds=[0.1, 0.3],
        drain_seconds=20,
        stdout=output,
    )
    elapsed = time.monotonic() - started
    events_applied()

    figures = report_figures(output.getvalue())
    assert figures["calls placed"] >= 1, output.getvalue()
    assert figures["answered"] >= 1, output.getvalue()
    assert figures["calls placed"] == (
        figures["answered"]
        + figures["abandoned (patience)"]
        + figures["asked for a call back"]
        + figures["hung up at stop"]
        + figures["ringing not accepted"]
    )
    assert figures["ring -> offer p50"] <= figures["ring -> offer p99"] < 10_000
    assert re.search(
        r"reunion rate: +(n/a|\d+%) \(\d+ of \d+ returning callers answered or called back",
        output.getvalue(),
    )
    simulated = Call.objects.filter(telephony_call_id__startswith="SIM-")
    assert simulated.count() == figures["calls placed"]
    assert set(simulated.values_list("state", flat=True)) <= {CallState.ENDED, CallState.ABANDONED}
    assert elapsed < 40


@system_test
def test_a_caller_who_asks_for_a_call_back_is_called_back_by_their_own_agent_a_bot(
    rapport, queue, make_agent, make_customer, monkeypatch
):
    """Maya's patience runs out while nobody is free: she asks for a call back (the choice is
    on). Sam, her last agent, logs in later as a bot: the call back is offered to him, he takes
    it, Rapport pushes `call.dial`, and the simulator places the call under the try's id."""
    monkeypatch.setattr(
        phone_system, "ASKS_FOR_CALLBACK", dict.fromkeys(("fine", "avoid", "unknown"), 1.0)
    )
    monkeypatch.setattr(phone_system, "ANSWERS_CALLBACK", 1.0)
    monkeypatch.setattr(phone_system, "CALLBACK_RING_SECONDS", SecondsRange(0.1, 0.2))
    sam = make_agent("sam", extension="1002")
    maya = make_customer("Maya Chen", phones=(MAYA,))
    Call.objects.create(
        telephony_call_id="earlier-maya",
        from_e164=MAYA,
        queue=queue,
        customer=maya,
        agent=sam,
        state=CallState.ENDED,
        connected_at=timezone.now() - timedelta(days=2),
    )

    async def asks():
        config = simulation_config(rapport, control_port=rapport.control_port)
        async with Simulation(config) as simulation:
            call = simulation.place_call(Caller(MAYA, RETURNING), patience_seconds=1)
            await asyncio.wait_for(call.over.wait(), 10)
            return call.call_id, simulation.tally.report()

    call_id, first = asyncio.run(asks())
    events_applied()
    asked = Call.objects.get(telephony_call_id=call_id)
    assert (asked.state, asked.end_reason) == (CallState.ENDED, "callback_requested")
    assert (first.callbacks_asked, first.abandoned) == (1, 0)
    callback = Callback.objects.get(requested_on=asked)

    async def called_back():
        config = simulation_config(
            rapport,
            bots=(BotLogin("sam", "pw-sam"),),
            control_port=rapport.control_port,
            callers=CallerDirectory(returning=(MAYA,), last_agents={MAYA: "1002"}),
        )
        async with Simulation(config) as simulation:
            await eventually(lambda: simulation.tally.callbacks_reached == 1, timeout=30)
            await simulation.phone.wait_until_quiet(10)
            return simulation.tally.report()

    second = asyncio.run(called_back())
    events_applied()

    assert (second.callbacks_placed, second.callbacks_reached) == (1, 1)
    assert second.callbacks_reached_by_own_agent == 1
    assert second.reunion_rate == 1.0
    callback.refresh_from_db()
    assert (callback.state, callback.attempts) == (CallbackState.REACHED, 1)
    placed = Call.objects.get(callback=callback)
    assert (placed.agent, placed.end_reason) == (sam, "completed")
    assert placed.queued_at == asked.queued_at


@contextmanager
def simulate_process(rapport: RapportWithControlUrl, *arguments: str) -> Iterator[Popen]:
    """`manage.py simulate` in a process of its own, ringing Rapport until at least three
    of its calls wait there; the caller of this stops it."""
    environment = {
        **os.environ,
        "DATABASE_URL": database_url_for_workers(),
        "TELEPHONY_WEBHOOK_SECRET": WEBHOOK_SECRET,
    }
    process = subprocess.Popen(
        [sys.executable, "manage.py", "simulate", "--url", rapport.base_url, "--rate", "120"]
        + ["--patience-seconds", "60", "60", *arguments],
        cwd=REPO,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while simulated_calls().count() < 3 and process.poll() is None:
            assert time.monotonic() < deadline, "no simulated calls arrived"
            time.sleep(0.2)
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def simulated_calls() -> QuerySet[Call]:
    return Call.objects.filter(telephony_call_id__startswith="SIM-")


@system_test
def test_sigterm_hangs_up_every_call_in_flight(rapport, queue):
    with simulate_process(rapport, "--report") as simulator:
        simulator.send_signal(signal.SIGTERM)
        output, _ = simulator.communicate(timeout=30)
    events_applied()

    assert simulator.returncode == 0, output
    assert simulated_calls().count() >= 3
    assert set(simulated_calls().values_list("state", flat=True)) == {CallState.ABANDONED}
    assert "hung up while waiting" in output
    figures = report_figures(output)
    assert figures["calls placed"] == simulated_calls().count() == figures["hung up at stop"]


@system_test
def test_the_next_run_ends_the_calls_a_killed_run_left_waiting(rapport, queue, tmp_path):
    journal = tmp_path / "phone-line-calls.json"
    with simulate_process(rapport, "--journal", str(journal)) as simulator:
        simulator.kill()
        simulator.wait()
    events_applied()
    left_waiting = set(simulated_calls().values_list("telephony_call_id", flat=True))
    assert left_waiting and set(json.loads(journal.read_text())) >= left_waiting
    assert set(simulated_calls().values_list("state", flat=True)) == {CallState.QUEUED}

    async def next_run() -> None:
        async with Simulation(simulation_config(rapport, journal_path=journal)):
            pass

    asyncio.run(next_run())
    events_applied()

    assert set(simulated_calls().values_list("state", flat=True)) == {CallState.ABANDONED}
    assert json.loads(journal.read_text()) == []
