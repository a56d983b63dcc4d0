"""Wrap-up codes at the console (issue 29), in headless Chromium against the real ASGI app and
worker: Ready is refused with a clear message while the queue's required code is missing; a
digit key chooses the code; the note being written survives a reload and is saved when the
agent goes on a break from wrap-up, with the call's code beside it."""

import pytest
from django.contrib.auth.models import Group, User
from django.utils import timezone

from customers.models import CallNote, Consent
from routing import wrap_up
from routing.models import Agent, Call, Queue
from routing.states import AgentStatus
from tests.support.browser import accept_and_answer, card_text, go_available, open_dashboard, ring
from tests.support.routing import past_call

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(90),
]


def test_a_required_code_is_chosen_by_its_key_and_the_draft_note_survives_a_break(
    open_console, rapport_servers, make_agent, make_customer, queue
):
    Queue.objects.filter(id=queue.id).update(wrap_up_code_required=True)
    wrap_up.give_default_codes(queue)
    dana = make_agent("dana", extension="1001")
    maya = make_customer("Maya Chen", consent=Consent.OPEN)

    page = open_console("dana")
    go_available(page)
    ring(page, rapport_servers, "CA-coded")
    accept_and_answer(page, rapport_servers, "CA-coded")
    rapport_servers.post_event("call.ended", "CA-coded", reason="completed")
    page.wait_for_selector("[data-wrap-up-codes]:not([hidden])")
    assert "2 Refund" in page.inner_text("[data-wrap-up-codes]")

    page.keyboard.press("r")
    page.wait_for_selector("[data-notice]:has-text('Choose a wrap-up code before Ready.')")
    assert Agent.objects.get(id=dana.id).status == AgentStatus.WRAP_UP

    page.keyboard.press("n")
    page.keyboard.type("Refund for the torn boots; she keeps the laces.")
    page.keyboard.press("Escape")
    page.keyboard.press("2")
    page.wait_for_selector('[data-wrap-up-code][aria-pressed="true"]:has-text("Refund")')
    assert Call.objects.get(telephony_call_id="CA-coded").wrap_up_label == "Refund"

    page.reload()
    page.wait_for_selector('[data-link-state="live"]')
    page.wait_for_selector('[data-wrap-up-code][aria-pressed="true"]:has-text("Refund")')
    assert page.input_value("[data-note-text]") == "Refund for the torn boots; she keeps the laces."

    page.click('[data-set-status="break"]')
    page.wait_for_selector('[data-set-status="break"][aria-checked="true"]')
    (note,) = CallNote.objects.filter(customer=maya)
    assert (note.text, note.wrap_up_label) == (
        "Refund for the torn boots; she keeps the laces.",
        "Refund",
    )
    assert note.call_id == Call.objects.get(telephony_call_id="CA-coded").id
    assert page.evaluate("Object.keys(sessionStorage)") == []


def test_the_next_call_shows_the_promise_first_and_the_wall_counts_todays_codes(
    open_console, chromium, rapport_servers, make_agent, make_customer, queue
):
    codes = {code.label: code for code in wrap_up.give_default_codes(queue)}
    make_agent("dana", extension="1001")
    sam = make_agent("sam", extension="1002")
    maya = make_customer("Maya Chen", consent=Consent.OPEN)
    promised = past_call(customer=maya, agent=sam, queue=queue, days_ago=3)
    Call.objects.filter(id=promised.id).update(
        created_at=promised.queued_at,
        wrap_up_code=codes["Call back promised"],
        wrap_up_label="Call back promised",
        call_back_promised=True,
    )
    CallNote.objects.create(
        customer=maya,
        author=sam.user,
        text="Will ring her when the size 9 is back.",
        call_id=promised.id,
        wrap_up_label="Call back promised",
    )
    today = timezone.now()
    Call.objects.create(
        telephony_call_id="CA-refunded",
        queue=queue,
        agent=sam,
        state="ended",
        queued_at=today,
        connected_at=today,
        ended_at=today,
        wrap_up_code=codes["Refund"],
        wrap_up_label="Refund",
    )
    morgan = User.objects.create_user("morgan", password="pw-morgan-9")
    morgan.groups.add(Group.objects.get_or_create(name="supervisor")[0])

    page = open_console("dana")
    go_available(page)
    ring(page, rapport_servers, "CA-again")

    follow_up = page.inner_text("[data-card] [data-follow-up]")
    assert follow_up.startswith("Call back promised")
    assert follow_up.endswith("by Sam.")
    assert page.inner_text("[data-card] [data-note-code]") == "Call back promised"
    assert card_text(page).index("Call back promised") < card_text(page).index("Last spoke with")

    context, wall, errors = open_dashboard(
        chromium, rapport_servers.base_url, "morgan", "pw-morgan-9"
    )
    line = wall.locator('[data-queue="loyalty"] [data-wrap-up-codes]')
    assert line.text_content() == "Wrap-up codes today: Refund 1"
    assert errors == []
    context.close()
