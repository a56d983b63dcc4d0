"""The agent console end to end: headless Chromium, the real ASGI app, a real Celery worker.

Set RAPPORT_SCREENSHOTS=1 to refresh docs/screenshots/ while these run.
"""

import json
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from customers.models import (
    CallNote,
    Channel,
    Consent,
    Customer,
    Pace,
    Provenance,
    ReturnBehaviour,
    SurveyTrust,
)
from routing import messages
from routing.models import Call, Queue
from tests.support.browser import (
    accept_and_answer,
    card_text,
    go_available,
    ring,
    screenshot,
    wait_for_offer,
)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(90),
]


@pytest.fixture
def sam(make_agent):
    return make_agent("sam", extension="1002")


def note(customer, author, *, days_ago: int, **fields) -> CallNote:
    return CallNote.objects.create(
        customer=customer,
        author=author,
        created_at=timezone.now() - timedelta(days=days_ago),
        **fields,
    )


def test_a_note_left_on_one_call_is_on_the_card_of_the_next(
    open_console, rapport_servers, make_agent, make_customer, sam
):
    dana = make_agent("dana", extension="1001")
    maya = make_customer(
        "Maya Chen",
        consent=Consent.OPEN,
        pace=Pace.BRISK,
        pace_source=Provenance.SAID_BY_CALLER,
        pace_set_by=sam.user,
        pace_set_at=timezone.now() - timedelta(days=30),
        survey_trust=SurveyTrust.AGREE,
        return_behaviour=ReturnBehaviour.RARELY,
        customer_since=timezone.now().date() - timedelta(days=6 * 365),
    )
    note(maya, sam.user, days_ago=30, text="Asked about trail shoes.", occasion="hiking trip")

    page = open_console("dana")
    screenshot(page, "console-idle")
    go_available(page)

    ring(page, rapport_servers, "CA-first")
    card = card_text(page)
    assert "Maya Chen" in card
    assert "In a rush — skip the chit-chat" in card
    assert "said by the caller" in card
    assert "Consent open" in card
    assert "Asked about trail shoes." in card
    assert "hiking trip" in card
    screenshot(page, "console-offer")

    page.keyboard.press("a")
    page.wait_for_selector('[data-card][data-mode="call"]')
    rapport_servers.post_event("call.answered", "CA-first", agent="1001")
    page.keyboard.press("n")
    page.keyboard.type("Wants waterproof boots before the anniversary weekend.")
    page.fill("input[name=occasion]", "anniversary")
    page.fill("input[name=sizes]", "W 8")
    screenshot(page, "console-connected")
    page.click("[data-note-form] button[type=submit]")
    page.wait_for_selector("[data-note-state]:has-text('Saved at')")

    rapport_servers.post_event("call.ended", "CA-first", reason="completed")
    page.wait_for_selector("[data-wrapup]:not([hidden])")
    screenshot(page, "console-wrap-up")
    page.click("[data-ready]")
    page.wait_for_selector('[data-set-status="available"][aria-checked="true"]')
    page.wait_for_selector("[data-idle]:not([hidden])")

    ring(page, rapport_servers, "CA-second")
    card = card_text(page)
    assert "You were their last agent" in card  # the offer's reason, as the server words it
    assert "Wants waterproof boots before the anniversary weekend." in card
    assert "anniversary" in card
    assert "You spoke with them" in card
    first_note = page.inner_text("[data-notes] li:first-child")
    assert "Wants waterproof boots" in first_note  # newest first
    assert Call.objects.get(telephony_call_id="CA-second").offers.get().agent == dana


def test_the_agent_says_who_is_calling_from_a_shared_number(
    open_console, rapport_servers, make_agent, make_customer, sam
):
    make_agent("dana", extension="1001")
    shared = "+14155550142"
    make_customer("Maya Chen", phones=[shared], consent=Consent.OPEN)
    leo = make_customer("Leo Chen", phones=[shared], consent=Consent.OPEN)
    note(leo, sam.user, days_ago=3, text="Leo is looking for running shoes.", sizes="M 10")

    page = open_console("dana")
    go_available(page)
    ring(page, rapport_servers, "CA-shared", shared)
    assert "Who am I speaking with?" in card_text(page)
    screenshot(page, "console-shared-number")
    assert "Leo is looking" not in card_text(page)

    page.click(f'[data-candidate="{leo.id}"]')
    page.wait_for_selector("[data-caller-name]:has-text('Leo Chen')")
    assert "Leo is looking for running shoes." in card_text(page)
    assert Call.objects.get(telephony_call_id="CA-shared").customer == leo


def test_with_consent_closed_the_card_shows_no_history(
    open_console, rapport_servers, make_agent, make_customer, sam
):
    make_agent("dana", extension="1001")
    ruth = make_customer("Ruth Adler", consent=Consent.CLOSED, survey_trust=SurveyTrust.AGREE)
    note(ruth, sam.user, days_ago=40, text="Bought red boots for her niece.", occasion="birthday")
    note(ruth, sam.user, days_ago=2, text="Refund for order 5512 still pending.", open_matter=True)

    page = open_console("dana")
    go_available(page)
    ring(page, rapport_servers, "CA-closed")

    card = card_text(page)
    assert "Ruth Adler" in card
    assert "Consent closed — no history shown." in card
    assert "Refund for order 5512 still pending." in card
    assert "red boots" not in card
    assert "birthday" not in card
    screenshot(page, "console-consent-closed")


def test_a_script_in_a_note_stays_text(
    open_console, rapport_servers, make_agent, make_customer, sam
):
    make_agent("dana", extension="1001")
    maya = make_customer("Maya <b>Chen</b>", consent=Consent.OPEN)
    hostile = '<script>window.pwned = 1</script><img src=x onerror="window.pwned = 2">'
    note(maya, sam.user, days_ago=1, text=hostile, occasion="<i>party</i>")

    page = open_console("dana")
    go_available(page)
    ring(page, rapport_servers, "CA-xss")

    assert hostile in page.inner_text("[data-notes]")
    assert "<i>party</i>" in page.inner_text("[data-notes]")
    assert page.inner_text("[data-caller-name]") == "Maya <b>Chen</b>"
    assert page.query_selector("[data-card] script, [data-card] img, [data-card] b") is None
    assert page.evaluate("window.pwned") is None


def test_a_reloaded_console_still_shows_the_ringing_offer(
    open_console, rapport_servers, make_agent, make_customer
):
    make_agent("dana", extension="1001")
    make_customer("Maya Chen", consent=Consent.OPEN)

    page = open_console("dana")
    go_available(page)
    ring(page, rapport_servers, "CA-reload")

    page.reload()
    wait_for_offer(page)
    assert "Maya Chen" in card_text(page)


def test_declining_takes_the_card_away_and_says_where_the_call_went(
    open_console, rapport_servers, make_agent, make_customer
):
    make_agent("dana", extension="1001")
    make_customer("Maya Chen", consent=Consent.OPEN)

    page = open_console("dana")
    go_available(page)
    ring(page, rapport_servers, "CA-decline")
    assert "Incoming call: Maya Chen" in page.inner_text("[data-announce]")

    page.keyboard.press("d")
    page.wait_for_selector("[data-idle]:not([hidden])")
    assert "You declined the call" in page.inner_text("[data-notice]")
    assert Call.objects.get(telephony_call_id="CA-decline").offers.get().state == "declined"


def test_a_missed_offer_makes_the_agent_not_ready_and_says_so(
    open_console, rapport_servers, make_agent, make_customer, queue
):
    make_agent("dana", extension="1001")
    make_customer("Maya Chen", consent=Consent.OPEN)
    Queue.objects.filter(id=queue.id).update(offer_timeout_seconds=2)

    page = open_console("dana")
    go_available(page)
    ring(page, rapport_servers, "CA-missed")

    page.wait_for_selector('[data-set-status="break"][aria-checked="true"]', timeout=10000)
    assert page.query_selector("[data-card]:not([hidden])") is None
    assert "You missed a call, so you are now Not ready." in page.inner_text("[data-notice]")
    assert page.inner_text("[data-idle-title]") == "Not ready — no calls are offered to you"


def test_a_dropped_socket_reconnects_and_the_offer_is_still_shown(
    open_console, rapport_servers, make_agent, make_customer
):
    make_agent("dana", extension="1001")
    make_customer("Maya Chen", consent=Consent.OPEN)
    sockets: list = []

    page = open_console("dana", sockets=sockets)
    go_available(page)
    ring(page, rapport_servers, "CA-drop")

    sockets[-1].close(code=4000, reason="network blip")
    page.wait_for_selector('[data-link-state="reconnecting"]')
    for _ in range(50):
        if len(sockets) == 2:
            break
        page.wait_for_timeout(100)
    assert len(sockets) == 2
    page.wait_for_selector('[data-link-state="live"]')
    wait_for_offer(page)
    assert "Maya Chen" in card_text(page)


def test_older_notes_load_on_demand(open_console, rapport_servers, make_agent, make_customer, sam):
    make_agent("dana", extension="1001")
    maya = make_customer("Maya Chen", consent=Consent.OPEN)
    for days_ago in range(1, 8):
        note(maya, sam.user, days_ago=days_ago, text=f"Note from {days_ago} days ago.")

    page = open_console("dana")
    go_available(page)
    ring(page, rapport_servers, "CA-more")
    assert len(page.query_selector_all("[data-notes] li")) == 5
    assert page.inner_text("[data-more-notes]") == "2 more"

    page.click("[data-more-notes]")
    page.wait_for_selector("[data-notes] li:nth-child(7)")
    assert "Note from 7 days ago." in page.inner_text("[data-notes] li:last-child")
    assert page.query_selector("[data-more-notes]") is None


def test_a_new_caller_gets_a_record_from_the_note_and_what_they_say(
    open_console, rapport_servers, make_agent
):
    make_agent("dana", extension="1001")
    page = open_console("dana")
    go_available(page)
    ring(page, rapport_servers, "CA-new", "+14155550999")
    assert page.inner_text("[data-caller-name]") == "New caller"

    accept_and_answer(page, rapport_servers, "CA-new")
    page.fill("[data-new-caller-name]", "Grace Hopper")
    page.fill("[data-note-text]", "First call: asked about the loyalty tiers.")
    page.fill("input[name=intent]", "join the programme")
    page.click("[data-note-form] button[type=submit]")
    page.wait_for_selector("[data-note-state]:has-text('Saved at')")
    page.wait_for_selector("[data-caller-name]:has-text('Grace Hopper')")
    page.click('[data-said-field="preferred_channel"][data-said-value="text"]')
    page.wait_for_selector("[data-said-state]:has-text('Recorded')")

    grace = Customer.objects.get(name="Grace Hopper")
    assert grace.phones.get().number == "+14155550999"
    assert Call.objects.get(telephony_call_id="CA-new").customer == grace
    saved = grace.notes.get()
    assert (saved.text, saved.intent) == (
        "First call: asked about the loyalty tiers.",
        "join the programme",
    )
    assert saved.call_id == Call.objects.get(telephony_call_id="CA-new").id
    assert (grace.preferred_channel, grace.preferred_channel_source) == (
        Channel.TEXT,
        Provenance.SAID_BY_CALLER,
    )
    assert "Prefers text — offer a text follow-up" in card_text(page)


def test_a_message_written_before_the_agent_named_the_caller_does_not_unname_them(
    open_console, rapport_servers, make_agent
):
    make_agent("dana", extension="1001")
    sockets: list = []
    page = open_console("dana", sockets=sockets)
    go_available(page)
    ring(page, rapport_servers, "CA-crossed", "+14155550998")
    call = accept_and_answer(page, rapport_servers, "CA-crossed")
    # What the answered call tells the screen, written while nobody is named on the call.
    written_before = messages.call_message(call, caller=messages.caller_for_call(call))
    assert written_before["customer_id"] is None

    page.fill("[data-new-caller-name]", "Ada Lovelace")
    page.fill("[data-note-text]", "Asked how points are earned.")
    page.click("[data-note-form] button[type=submit]")
    page.wait_for_selector("[data-note-state]:has-text('Saved at')")
    page.wait_for_selector("[data-caller-name]:has-text('Ada Lovelace')")
    # It reaches the browser only now (a slow socket, a busy server).
    sockets[-1].send(json.dumps(written_before))
    page.wait_for_timeout(300)

    assert page.inner_text("[data-caller-name]") == "Ada Lovelace"


def test_a_message_arriving_while_the_agent_types_the_callers_name_keeps_what_they_type(
    open_console, rapport_servers, make_agent
):
    make_agent("dana", extension="1001")
    sockets: list = []
    page = open_console("dana", sockets=sockets)
    go_available(page)
    ring(page, rapport_servers, "CA-typing", "+14155550997")
    call = accept_and_answer(page, rapport_servers, "CA-typing")

    page.click("[data-new-caller-name]")
    page.keyboard.type("Grace")
    # Any message redraws the screen: here the call's own, as a transfer or hold sends it.
    sockets[-1].send(json.dumps(messages.call_message(call, caller=messages.caller_for_call(call))))
    page.wait_for_timeout(300)
    page.keyboard.type(" Hopper")

    assert page.input_value("[data-new-caller-name]") == "Grace Hopper"


def test_a_login_without_an_agent_profile_gets_a_clear_message(chromium, rapport_servers):
    User.objects.create_user(username="morgan", password="pw-morgan")
    context = chromium.new_context()
    page = context.new_page()
    page.goto(rapport_servers.base_url + "/accounts/login/")
    screenshot(page, "login")
    page.fill("input[name=username]", "morgan")
    page.fill("input[name=password]", "pw-morgan")
    page.click("button[type=submit]")
    page.wait_for_selector("[data-not-agent]")
    assert "You are not set up as an agent" in page.inner_text("main")
    context.close()


def test_logging_out_elsewhere_ends_the_link_for_good(open_console, rapport_servers, make_agent):
    make_agent("dana", extension="1001")
    page = open_console("dana")
    opened: list = []
    page.on("websocket", lambda socket: opened.append(socket.url))

    elsewhere = page.context.new_page()
    elsewhere.goto(rapport_servers.base_url + "/")
    elsewhere.click("form[action='/accounts/logout/'] button")
    elsewhere.wait_for_url("**/accounts/login/")

    page.wait_for_selector('[data-link-state="refused"]')
    assert page.inner_text("[data-link-state]") == "Signed out — reload the page"
    page.wait_for_timeout(2000)  # past the first retry's back-off: there is none
    assert opened == []
