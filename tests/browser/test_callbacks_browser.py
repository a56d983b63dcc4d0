"""The caller's choice and a call back, end to end: headless Chromium, the real ASGI app and a
real Celery worker with beat, Twilio's side as requests signed by the `twilio` package (the wait
loop's `<Gather>` followed the way Twilio follows it), and a local stand-in for Twilio's REST API
where the call back is created.

Dana is busy; Maya, whose last agent she is, rings and is held for her. Dana's waiting line says
so; Maya presses 1 and the line says she chose to wait; then Maya presses 3 on a second call and
asks for a call back; once Dana is free the call back rings on her console as a call back card,
and accepting it creates the outbound call at the stand-in Twilio.

Set RAPPORT_SCREENSHOTS=1 to refresh docs/screenshots/console-chose-to-wait.png and
console-callback-card.png while this runs.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import pytest
from django.utils import timezone

from customers.models import AccessReason, Consent, ContextAccess
from routing.models import Call, Callback, CallbackState, Queue, Voicemail
from tests.support.browser import call_rings, go_available, screenshot
from tests.support.routing import past_call, wait_until
from tests.support.servers import RapportServers, served
from tests.support.twilio import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    CUSTOMER_NUMBER,
    LOYALTY_NUMBER,
    LiveTwilio,
    TwilioApi,
    new_call_sid,
)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(150),
]

DANA_PHONE = "+15550001001"


@pytest.fixture(scope="module")
def twilio_servers(
    django_db_setup, django_db_blocker, twilio_api: TwilioApi
) -> Iterator[RapportServers]:
    """The web server and a worker with beat, with a Twilio account whose REST API is the
    stand-in."""
    extra_env = {
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "TWILIO_API_BASE_URL": twilio_api.base_url,
        "TWILIO_API_TIMEOUT_SECONDS": "3",
        "TWILIO_PUBLIC_BASE_URL": "",
    }
    with django_db_blocker.unblock(), served(with_worker=True, extra_env=extra_env) as servers:
        yield servers


@pytest.fixture
def queue(queue: Queue) -> Queue:
    """A caller is held two minutes for their busy last agent."""
    queue.offer_timeout_seconds = 30
    queue.last_agent_wait_seconds = 120
    queue.save()
    return queue


def test_the_last_agent_sees_their_caller_choose_to_wait_and_later_takes_their_call_back(
    open_console, twilio_servers, twilio_api, make_agent, make_customer, queue
):
    twilio_api.reset()
    dana = make_agent("dana", extension=DANA_PHONE)
    maya = make_customer("Maya Chen", phones=[CUSTOMER_NUMBER], consent=Consent.OPEN)
    past_call(customer=maya, agent=dana, queue=queue, days_ago=4)
    twilio = LiveTwilio(twilio_servers.base_url)

    page = open_console("dana", on=twilio_servers)
    go_available(page)
    # Dana takes a stranger's call (a phone system of our own format): she is busy.
    call_rings(twilio_servers, "CA-stranger", "+14155550999")
    page.wait_for_selector('[data-card][data-mode="offer"]', timeout=15000)
    page.keyboard.press("a")
    page.wait_for_selector('[data-card][data-mode="call"]')
    twilio_servers.post_event("call.answered", "CA-stranger", agent=DANA_PHONE)
    page.wait_for_selector('[data-status-label][data-status="busy"]')

    # Maya rings through Twilio and is held for Dana; the wait loop asks her.
    first = new_call_sid()
    enqueue = twilio.incoming_call(first).only("Enqueue")
    line = page.wait_for_selector(f'[data-waiting-call="{first}"]', timeout=15000)
    assert re.fullmatch(r"Maya Chen is waiting for you \(\d+ s\)", line.inner_text())
    asked = twilio.wait_round(enqueue, first)
    assert asked.verbs()[0] == "Gather"
    assert asked.root[0].find("Say").text.startswith("Dana is on another call.")

    twilio.press(asked.root[0], first, "1")
    page.wait_for_function(
        """(callId) => {
          const line = document.querySelector(`[data-waiting-call="${callId}"]`);
          return line && /chose to wait for you \\(\\d+:\\d\\d\\)$/.test(line.innerText);
        }""",
        arg=first,
        timeout=10000,
    )
    chose = page.inner_text(f'[data-waiting-call="{first}"]')
    assert re.fullmatch(r"Maya Chen chose to wait for you \(\d+:\d\d\)", chose), chose
    screenshot(page, "console-chose-to-wait")

    # Maya hangs up after all and rings again later. Having said on the keypad that she is fine
    # on hold she would not be asked again: the test forgets it, so she is, and this time she
    # asks for a call back.
    assert twilio.call_status(first, "completed", at=timezone.now()) == 204
    page.wait_for_selector(f'[data-waiting-call="{first}"]', state="detached", timeout=10000)
    type(maya).objects.filter(pk=maya.pk).update(hold_tolerance="unknown")
    second = new_call_sid()
    enqueue = twilio.incoming_call(second).only("Enqueue")
    page.wait_for_selector(f'[data-waiting-call="{second}"]', timeout=15000)
    asked = twilio.wait_round(enqueue, second)
    assert twilio.press(asked.root[0], second, "3").verbs() == ["Leave"]
    assert twilio.left_queue(enqueue, second, "leave").verbs() == ["Say", "Record", "Hangup"]
    callback = wait_until(
        lambda: Callback.objects.filter(requested_on__telephony_call_id=second).first()
    )
    attempt = wait_until(lambda: Call.objects.filter(callback=callback).first())

    # Dana finishes her call; the call back rings on her console as a call back card.
    twilio_servers.post_event("call.ended", "CA-stranger", reason="completed")
    page.wait_for_selector("[data-wrapup]:not([hidden])")
    page.click("[data-ready]")
    card = page.wait_for_selector(
        f'[data-card][data-mode="offer"][data-call-id="{attempt.telephony_call_id}"]',
        timeout=15000,
    )
    assert card.inner_text().lower().startswith("call back")
    assert page.locator(f'[data-card] [data-callback="{callback.pk}"]').count() == 1
    assert "Maya Chen" in card.inner_text()
    screenshot(page, "console-callback-card")

    page.keyboard.press("a")
    created = wait_until(
        lambda: [r for r in twilio_api.received if r.path.endswith("/Calls.json")], timeout=15
    )[-1]
    assert created.form["To"] == [CUSTOMER_NUMBER]
    assert created.form["From"] == [LOYALTY_NUMBER]
    assert "<Number" in created.form["Twiml"][0] and DANA_PHONE in created.form["Twiml"][0]
    wait_until(
        lambda: Callback.objects.get(pk=callback.pk).state == CallbackState.DIALLING, timeout=10
    )


def test_nobody_online_the_caller_leaves_a_message_their_agent_hears_from_the_callback_card(
    open_console, twilio_servers, twilio_api, make_agent, make_customer, queue
):
    """Maya rings while Dana, the queue's one agent and her last, is offline: she leaves a
    message. Dana comes online; the message's call back rings on her console with the message,
    which she plays: the audio comes from Rapport, which fetched it from the stand-in Twilio,
    and the access log has the listen."""
    twilio_api.reset()
    dana = make_agent("dana", extension=DANA_PHONE)
    maya = make_customer("Maya Chen", phones=[CUSTOMER_NUMBER], consent=Consent.OPEN)
    past_call(customer=maya, agent=dana, queue=queue, days_ago=4)
    twilio = LiveTwilio(twilio_servers.base_url)
    page = open_console("dana", on=twilio_servers)

    call_sid = new_call_sid()
    answer = twilio.incoming_call(call_sid)
    assert answer.verbs() == ["Say", "Record", "Hangup"]
    go_available(page)
    started = time.monotonic()
    after, code, recording_sid = twilio.record(answer.root[1], call_sid, seconds=23)
    assert (after.verbs(), code) == (["Say", "Hangup"], 204)
    note = page.wait_for_selector('[data-card][data-mode="offer"] [data-voicemail]', timeout=15000)
    print(f"recording callback to the call back card on screen: {time.monotonic() - started:.3f} s")
    voicemail = Voicemail.objects.get(recording_sid=recording_sid)
    assert note.get_attribute("data-voicemail") == str(voicemail.pk)
    assert note.inner_text().startswith("Left a message (0:23)")
    assert "Maya Chen" in page.inner_text('[data-card][data-mode="offer"]')

    with page.expect_response(lambda r: "/api/voicemails/" in r.url) as heard:
        page.click("[data-play-voicemail]")
    assert heard.value.status == 200
    assert heard.value.url.endswith(f"/api/voicemails/{voicemail.pk}/audio/")
    assert heard.value.headers["content-type"] == "audio/x-wav"
    fetched = wait_until(lambda: [r for r in twilio_api.received if r.method == "GET"])
    assert fetched[-1].path.endswith(f"/Recordings/{recording_sid}.wav")
    assert wait_until(
        lambda: ContextAccess.objects.filter(
            customer=maya, user=dana.user, reason=AccessReason.VOICEMAIL
        ).exists()
    )
