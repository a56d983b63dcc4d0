"""The phone in the console, for real: Dana's console in Chromium (fake microphone) registers
with JsSIP over WebSocket at Kamailio running deploy/kamailio/kamailio.cfg as shipped, with the
credentials Rapport hands it (GET /api/softphone/); a baresip caller dials the queue; the route
hint names Dana (her caller from last time); her console rings with the caller's card; one click
on Accept answers in the browser; RTP flows both ways through rtpengine (the browser's
getStats, and the caller's recording holds the browser's audio); the caller hangs up; Dana is in
wrap-up and the call's history is right. In the test's own network namespace
(tests/support/sip.py). Prints INVITE -> console ring and Accept -> first media packet."""

from __future__ import annotations

import contextlib
import os
import time
import wave
from pathlib import Path

import pytest

from routing.models import Agent, Call
from routing.states import AgentStatus, CallState
from tests.support import sip, sip_people
from tests.support.browser import launched_chromium, screenshot
from tests.support.routing import wait_until
from tests.support.sip_people import EARLIER_CALL, MAYA, QUEUE_NUMBER

test_in_own_network_namespace = sip.namespace_test(__file__)

pytestmark = [
    *sip.namespace_marks(),
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(120),
]

CALLER_TONE, BOB_TONE = 880, 660
# Chromium's fake microphone (--use-fake-device-for-media-stream): a beep every second.
FAKE_MEDIA = [
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
    "--allow-loopback-in-peer-connection",
    "--autoplay-policy=no-user-gesture-required",
]
# Every RTCPeerConnection the page makes, for the test to read its getStats().
COLLECT_PEER_CONNECTIONS = """
(() => {
  const Native = window.RTCPeerConnection;
  window.__peerConnections = [];
  window.RTCPeerConnection = class extends Native {
    constructor(...args) {
      super(...args);
      window.__peerConnections.push(this);
    }
  };
})();
"""
# Resolves once the page's peer connection has received an RTP packet; its audio counters.
FIRST_PACKET = """
async () => {
  const started = performance.now();
  while (performance.now() - started < 10000) {
    for (const connection of window.__peerConnections) {
      const stats = await connection.getStats();
      for (const report of stats.values()) {
        const audio = report.type === "inbound-rtp" && report.kind === "audio";
        if (audio && report.packetsReceived > 0) return true;
      }
    }
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  return false;
}
"""
AUDIO_COUNTERS = """
async () => {
  const counters = { packetsReceived: 0, packetsSent: 0 };
  for (const connection of window.__peerConnections) {
    for (const report of (await connection.getStats()).values()) {
      if (report.type === "inbound-rtp" && report.kind === "audio") {
        counters.packetsReceived += report.packetsReceived;
      }
      if (report.type === "outbound-rtp" && report.kind === "audio") {
        counters.packetsSent += report.packetsSent;
      }
    }
  }
  return counters;
}
"""


@pytest.fixture(scope="module")
def chromium():
    with launched_chromium(FAKE_MEDIA) as browser:
        yield browser


@pytest.fixture
def open_console(chromium, rapport):
    """Logs `username` in and returns (page, page errors). At the end each page leaves (its
    phone unregisters, as on a tab closed) and its context closes: the next scenario's PBX rings
    no page of this one."""
    contexts = []

    def open_as(username: str):
        context = chromium.new_context(
            viewport={"width": 1280, "height": 860}, permissions=["microphone"]
        )
        contexts.append(context)
        context.set_default_timeout(10000)
        context.add_init_script(COLLECT_PEER_CONNECTIONS)
        if os.environ.get("SOFTPHONE_DEBUG"):
            context.add_init_script('localStorage.debug = "JsSIP:*";')
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        if os.environ.get("SOFTPHONE_DEBUG"):
            # SOFTPHONE_DEBUG=<file>: JsSIP's own log, for a failure the assertions do not explain.
            log = Path(os.environ["SOFTPHONE_DEBUG"])
            page.on("console", lambda message: append_line(log, message.text))
        page.goto(rapport.base_url + "/accounts/login/")
        page.fill("input[name=username]", username)
        page.fill("input[name=password]", "pw-" + username)
        page.click("button[type=submit]")
        page.wait_for_url(rapport.base_url + "/")
        page.wait_for_selector('[data-link-state="live"]')
        return page, errors

    yield open_as
    for context in contexts:
        for page in context.pages:
            with contextlib.suppress(Exception):
                page.goto("about:blank")
        context.close()


def append_line(path: Path, text: str) -> None:
    with path.open("a") as log:
        print(f"{time.monotonic():.3f} {text[:3000]}", file=log)


def loud_fraction(recording: Path) -> float:
    """The share of a WAV's samples (first channel) that are not silence."""
    with wave.open(str(recording)) as wav:
        channels = wav.getnchannels()
        frames = wav.readframes(wav.getnframes())
    samples = memoryview(frames).cast("h")[::channels]
    return sum(1 for sample in samples if abs(sample) > 300) / max(1, len(samples))


def ended() -> Call:
    """This scenario's call (not Maya's earlier one), once Rapport has it ended."""

    def call_ended():
        calls = Call.objects.exclude(telephony_call_id=EARLIER_CALL)
        return calls.select_related("agent", "customer").filter(state=CallState.ENDED).first()

    return wait_until(call_ended, timeout=10)


def test_dana_answers_in_the_browser_with_one_click_and_talks_then_wraps_up(
    pbx, rapport, line, open_console
):
    dana = sip_people.agent("dana", "1001", line)
    sip_people.agent("bob", "1002", line)
    sip_people.spoke_with(MAYA, dana, line)
    page, errors = open_console("dana")
    page.wait_for_selector('[data-phone-state="connected"]:has-text("Phone connected")')
    caller = pbx.caller(MAYA, tone_hz=CALLER_TONE)

    dialled_at = caller.dial(pbx.sip_uri(QUEUE_NUMBER))
    page.wait_for_selector('[data-card][data-mode="ringing"] [data-phone-accept]:not([disabled])')
    rang_at = time.monotonic()
    assert page.get_attribute("body", "data-ringing") == "true"
    # The INVITE may beat Rapport's card (the PBX posts newCall from a timer): the card drawn
    # from it first, then the caller's card, Accept still on it.
    accept = page.wait_for_selector(
        '[data-card][data-mode="ringing"]:has-text("Maya Chen") [data-phone-accept]:not([disabled])'
    )
    carded_at = time.monotonic()
    assert "Ringing in this browser" in page.inner_text("[data-card]")
    screenshot(page, "console-softphone-ringing")

    accepted_at = time.monotonic()
    accept.click()
    assert page.evaluate(FIRST_PACKET), "no RTP reached the browser"
    first_packet_at = time.monotonic()
    caller.wait_for("CALL_ESTABLISHED")
    page.wait_for_selector('[data-card][data-mode="call"]:has-text("Maya Chen")')
    page.wait_for_selector("[data-phone-call]:not([hidden]) [data-phone-hangup]")
    time.sleep(1.5)  # the fake microphone beeps once a second: the caller hears one
    counters = page.evaluate(AUDIO_COUNTERS)

    page.click("[data-phone-mute]")
    page.wait_for_selector('[data-phone-mute][aria-pressed="true"]:has-text("Unmute")')
    page.click("[data-phone-mute]")
    page.wait_for_selector('[data-phone-mute][aria-pressed="false"]')
    page.click("[data-phone-hold]")
    page.wait_for_selector('[data-phone-call-state]:has-text("On hold")')
    screenshot(page, "console-softphone-on-hold")
    time.sleep(0.3)  # the re-INVITE answered: the caller stops sending to a held line
    held_from = page.evaluate(AUDIO_COUNTERS)["packetsReceived"]
    time.sleep(0.5)
    held_to = page.evaluate(AUDIO_COUNTERS)["packetsReceived"]
    page.click("[data-phone-hold]")
    page.wait_for_selector('[data-phone-call-state]:has-text("On the line")')
    time.sleep(0.3)
    resumed = page.evaluate(AUDIO_COUNTERS)["packetsReceived"]
    print(f"on hold: {held_to - held_from} packets in 0.5 s; resumed: {resumed - held_to} in 0.3 s")
    assert held_to - held_from < 5 < resumed - held_to
    caller.hangup()
    caller.wait_for("CALL_CLOSED")

    page.wait_for_selector("[data-wrapup]:not([hidden])")
    page.wait_for_selector('body[data-softphone-call="none"]')
    ms = {
        "INVITE -> console ring": rang_at - dialled_at,
        "INVITE -> the caller's card (Generic CTI newCall)": carded_at - dialled_at,
        "Accept -> first media packet in the browser": first_packet_at - accepted_at,
    }
    print("", *(f"{what}: {seconds * 1000:.0f} ms" for what, seconds in ms.items()), sep="\n")
    print(f"browser audio: {counters}")
    assert counters["packetsReceived"] > 0 and counters["packetsSent"] > 0
    heard = loud_fraction(caller.heard())
    print(f"caller's recording: {heard:.1%} of samples not silent")
    assert heard > 0.01, "the caller heard nothing from the browser"
    call = ended()
    assert (call.agent, call.customer.name, call.from_number) == (dana, "Maya Chen", MAYA)
    assert call.end_reason == "completed" and call.connected_at is not None
    assert Agent.objects.get(id=dana.id).status == AgentStatus.WRAP_UP
    assert errors == []


def rings_dana_then_bob(pbx, rapport, line, open_console):
    """Dana (the caller's last agent) in her console, Bob on a baresip phone that answers; Maya
    dials the queue and Dana's console rings with Accept. Returns (page, Bob's phone, caller)."""
    dana = sip_people.agent("dana", "1001", line)
    bob = sip_people.agent("bob", "1002", line)
    sip_people.spoke_with(MAYA, dana, line)
    bob_phone = pbx.phone(
        "1002", tone_hz=BOB_TONE, credentials=sip.softphone_credentials(rapport, bob.user)
    )
    page, errors = open_console("dana")
    page.wait_for_selector('[data-phone-state="connected"]')
    caller = pbx.caller(MAYA, tone_hz=CALLER_TONE)
    caller.dial(pbx.sip_uri(QUEUE_NUMBER))
    page.wait_for_selector('[data-card][data-mode="ringing"] [data-phone-accept]:not([disabled])')
    return dana, bob, page, bob_phone, caller


def bob_took_it(bob, bob_phone, caller, page, *, since: float) -> None:
    """Bob's phone answered at once, not after Dana's ring ran out."""
    answered = bob_phone.wait_for("CALL_ESTABLISHED")
    print(f"Bob answered {(answered['at'] - since) * 1000:.0f} ms after Dana's browser let go")
    assert answered["at"] - since < 2
    caller.wait_for("CALL_ESTABLISHED")
    # Dana's screen lets the call go: Bob has it.
    page.wait_for_selector("[data-card]", state="hidden")
    caller.hangup()
    caller.wait_for("CALL_CLOSED")
    assert ended().agent == bob
    assert Agent.objects.get(telephony_identity="1001").status == AgentStatus.AVAILABLE


def test_declined_in_the_browser_the_pbx_rings_the_next_agent(pbx, rapport, line, open_console):
    dana, bob, page, bob_phone, caller = rings_dana_then_bob(pbx, rapport, line, open_console)

    declined_at = time.monotonic()
    page.click("[data-phone-decline]")

    page.wait_for_selector('body[data-softphone-call="none"]')
    bob_took_it(bob, bob_phone, caller, page, since=declined_at)
    assert page.is_hidden("[data-phone-call]")


def test_a_reload_while_ringing_loses_no_call_and_the_page_registers_again(
    pbx, rapport, line, open_console
):
    dana, bob, page, bob_phone, caller = rings_dana_then_bob(pbx, rapport, line, open_console)

    reloaded_at = time.monotonic()
    page.reload()

    bob_took_it(bob, bob_phone, caller, page, since=reloaded_at)
    page.wait_for_selector('[data-phone-state="connected"]')


def test_dana_hangs_up_in_the_browser_and_wraps_up(pbx, rapport, line, open_console):
    dana, bob, page, bob_phone, caller = rings_dana_then_bob(pbx, rapport, line, open_console)
    page.click("[data-phone-accept]")
    caller.wait_for("CALL_ESTABLISHED")
    page.wait_for_selector("[data-phone-call]:not([hidden])")

    page.click("[data-phone-hangup]")

    caller.wait_for("CALL_CLOSED")
    page.wait_for_selector("[data-wrapup]:not([hidden])")
    assert page.is_hidden("[data-phone-call]")
    assert ended().agent == dana
    assert Agent.objects.get(id=dana.id).status == AgentStatus.WRAP_UP
