"""The simulator's own parts, without Rapport: its report's figures, the control URL's refusals,
one journal per simulator, and whom its returning callers are. tests/system/test_simulator.py
runs it against the real thing."""

import asyncio
import json
import random

import httpx
import pytest
from standardwebhooks import Webhook

from simulator import SecondsRange, Tally
from simulator.callers import RETURNING
from simulator.control import ControlListener
from simulator.journal import CallJournal, JournalInUse
from simulator.phone_system import PhoneSystem
from simulator.signing import signed_headers
from simulator.telephony_api import TelephonyApi
from tests.support.servers import WEBHOOK_SECRET, free_port
from tests.support.simulator import report_figures


def test_the_report_counts_each_first_offer_and_reads_percentiles_by_nearest_rank():
    tally = Tally(placed=4, abandoned=1)
    for index in range(1, 101):
        tally.ring_sent(f"SIM-{index}", at=10.0)
        tally.offer_seen(f"SIM-{index}", at=10.0 + index / 1000)
    tally.offer_seen("SIM-1", at=99.0)
    tally.offer_seen("CA-not-ours", at=99.0)
    tally.answered_call(had_last_agent=True, reunited=True)
    tally.answered_call(had_last_agent=True, reunited=False)
    tally.answered_call(had_last_agent=False, reunited=False)

    report = tally.report()

    assert report.offers_measured == 100
    assert report.ring_to_offer_p50_ms == pytest.approx(50)
    assert report.ring_to_offer_p99_ms == pytest.approx(99)
    assert report.reunion_rate == 0.5
    assert report_figures("\n".join(report.lines())) == {
        "calls placed": 4,
        "answered": 3,
        "abandoned (patience)": 1,
        "asked for a call back": 0,
        "call backs placed": 0,
        "hung up at stop": 0,
        "ringing not accepted": 0,
        "reunion rate": 50,
        "ring -> offer p50": 50,
        "ring -> offer p99": 99,
    }


def test_the_reunion_rate_counts_call_backs_made_by_the_callers_own_agent():
    tally = Tally(placed=4, abandoned=1, callbacks_asked=1)
    tally.answered_call(had_last_agent=True, reunited=True)
    tally.answered_call(had_last_agent=True, reunited=False)
    tally.callback_reached(reunited=True)

    report = tally.report()

    assert report.reunion_rate == pytest.approx(2 / 3)
    assert report.abandoned_share == 0.25
    figures = report_figures("\n".join(report.lines()))
    assert (figures["asked for a call back"], figures["reunion rate"]) == (1, 67)


def test_the_control_url_refuses_a_bad_signature_and_unknown_calls():
    secret = WEBHOOK_SECRET
    other_secret = "whsec_" + "b3RoZXItc2VjcmV0LW9mLXRoaXJ0eS10d28tYnl0ZXM="
    known = json.dumps({"type": "call.connect", "call_id": "SIM-nobody", "agent": "1002"})

    async def scenario() -> dict[str, int]:
        port = free_port()
        async with httpx.AsyncClient(base_url="http://127.0.0.1:9") as unused:
            phone = PhoneSystem(
                api=TelephonyApi(http=unused, webhook=Webhook(secret)),
                tally=Tally(),
                rng=random.Random(1),
                talk=SecondsRange(1, 1),
                last_agents={},
            )
            listener = ControlListener(
                webhook=Webhook(secret),
                on_connect=phone.connect,
                host="127.0.0.1",
                port=port,
                path="/control/",
            )
            await listener.start()
            try:
                async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:

                    async def post(body: str, signer: str | None, path: str = "/control/") -> int:
                        headers = {"content-type": "application/json"}
                        if signer:
                            headers |= signed_headers(Webhook(signer), body)
                        return (await client.post(path, content=body, headers=headers)).status_code

                    return {
                        "unsigned": await post(known, None),
                        "wrong secret": await post(known, other_secret),
                        "tampered": await tampered(client, known, secret),
                        "unknown call": await post(known, secret),
                        "not a connect": await post('{"type": "call.hangup"}', secret),
                        "wrong path": await post(known, secret, path="/elsewhere/"),
                    }
            finally:
                await listener.close()

    assert asyncio.run(scenario()) == {
        "unsigned": 401,
        "wrong secret": 401,
        "tampered": 401,
        "unknown call": 404,
        "not a connect": 400,
        "wrong path": 404,
    }


async def tampered(client: httpx.AsyncClient, body: str, secret: str) -> int:
    """Signed, then changed on the way: the signature no longer matches the body."""
    headers = {"content-type": "application/json", **signed_headers(Webhook(secret), body)}
    changed = body.replace("1002", "1003")
    return (await client.post("/control/", content=changed, headers=headers)).status_code


def test_one_journal_serves_one_simulator_at_a_time(tmp_path):
    first, second = CallJournal(tmp_path / "calls.json"), CallJournal(tmp_path / "calls.json")
    assert first.open() == []
    with pytest.raises(JournalInUse):
        second.open()
    first.close()
    assert second.open() == []
    second.close()


def test_returning_callers_are_mostly_the_callers_of_the_people_at_a_console():
    from simulator.callers import CallerDirectory

    directory = CallerDirectory(
        returning=("+14155550001", "+14155550002", "+14155550003", "+14155550004"),
        peoples_callers=("+14155550001",),
    )
    rng = random.Random(3)
    returning = [
        c.number for c in (directory.pick(rng) for _ in range(2000)) if c.kind == RETURNING
    ]

    share = returning.count("+14155550001") / len(returning)
    assert 0.72 < share < 0.86  # 0.7 favoured + a quarter of the other 0.3
