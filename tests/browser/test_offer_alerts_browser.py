"""An offer the agent cannot miss, end to end: headless Chromium with the console behind another
tab, the real ASGI app and Celery worker. The page uses the real Notification API; an init
script records each notification it constructs and closes, and each `window.focus()`, so the
test can see what the desktop would show.

Headless Chromium keeps every tab "visible" (Playwright emulates focus on each page), so the
same init script lets the test say when the console is behind another tab: while it is,
`document.visibilityState` reads "hidden", as a real browser's would."""

import pytest

from customers.models import Consent
from routing.models import Call
from tests.support.browser import call_rings, go_available, ring, wait_for_offer
from tests.support.routing import past_call

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(90),
]

RECORD_NOTIFICATIONS = """
(() => {
  const Real = window.Notification;
  window.__shown = [];
  window.__notifications = [];
  window.__focused = 0;
  let behind = false;
  const visibility = Object.getOwnPropertyDescriptor(Document.prototype, "visibilityState");
  Object.defineProperty(Document.prototype, "visibilityState", {
    configurable: true,
    get() { return behind ? "hidden" : visibility.get.call(this); },
  });
  window.__putBehind = (hidden) => {
    behind = hidden;
    document.dispatchEvent(new Event("visibilitychange"));
  };
  const focus = window.focus.bind(window);
  window.focus = () => { window.__focused += 1; focus(); };
  if (!Real) return;
  class Recorded extends Real {
    constructor(title, options) {
      super(title, options);
      const { body, tag } = options || {};
      this.__seen = { title: title, body: body || "", tag: tag, closed: false };
      window.__shown.push(this.__seen);
      window.__notifications.push(this);
    }
    close() { this.__seen.closed = true; super.close(); }
  }
  Object.defineProperty(Recorded, "permission", { get: () => Real.permission });
  Recorded.requestPermission = (...args) => Real.requestPermission(...args);
  window.Notification = Recorded;
})();
"""


def shown(page) -> list[dict]:
    return page.evaluate("window.__shown")


def behind_another_tab(page):
    """Another tab of the same browser window comes to the front; the console is behind it."""
    other = page.context.new_page()
    other.goto("about:blank")
    other.bring_to_front()
    page.evaluate("window.__putBehind(true)")
    return other


def in_front(page) -> None:
    page.bring_to_front()
    page.evaluate("window.__putBehind(false)")


@pytest.fixture
def alerted_console(open_console, rapport_servers):
    """The console with the notification recorder in place, notifications allowed or not."""

    def open_as(username: str, *, notifications: bool = True):
        page = open_console(username)
        page.context.add_init_script(RECORD_NOTIFICATIONS)
        if notifications:
            page.context.grant_permissions(["notifications"], origin=rapport_servers.base_url)
        page.reload()
        page.wait_for_selector('[data-link-state="live"]')
        return page

    return open_as


def test_an_offer_behind_another_tab_rings_and_notifies_until_the_caller_hangs_up(
    alerted_console, rapport_servers, make_agent, make_customer
):
    make_agent("dana", extension="1001")
    make_customer("Maya Chen", consent=Consent.CONDITIONAL)
    page = alerted_console("dana")
    go_available(page)  # a click: from now on the page may make sound
    assert page.get_attribute("body", "data-sound") == "on"
    assert page.evaluate("document.body.dataset.ringing") == "false"

    behind_another_tab(page)
    call_rings(rapport_servers, "CA-behind")
    page.wait_for_function("() => window.__shown.length === 1")
    wait_for_offer(page)
    offer = Call.objects.get(telephony_call_id="CA-behind").offers.get()
    assert shown(page) == [
        {
            "title": "Incoming call — Loyalty",
            "body": "Maya",
            "tag": f"offer-{offer.id}",
            "closed": False,
        }
    ]
    assert page.get_attribute("body", "data-ringing") == "true"
    assert page.get_attribute("body", "data-sound") == "on"
    titles = {page.evaluate("document.title")}
    for _ in range(12):
        page.wait_for_timeout(250)
        titles.add(page.evaluate("document.title"))
    assert {"Incoming call — Loyalty", "Console · Rapport"} <= titles  # the title flashes

    # The agent clicks the notification on their desktop.
    page.evaluate("window.__notifications[0].dispatchEvent(new Event('click'))")
    page.wait_for_function("() => window.__focused === 1")
    in_front(page)

    rapport_servers.post_event("call.ended", "CA-behind", reason="abandoned")
    page.wait_for_function("() => window.__shown[0].closed === true")
    page.wait_for_selector("body[data-ringing='false']")
    page.wait_for_selector("[data-idle]:not([hidden])")
    assert len(shown(page)) == 1
    assert page.evaluate("document.title") == "Console · Rapport"


@pytest.mark.parametrize(
    ("consent", "body"),
    [(Consent.OPEN, "Maya"), (Consent.CONDITIONAL, "Maya"), (Consent.CLOSED, "")],
)
def test_a_notification_names_the_caller_only_as_consent_allows(
    alerted_console, rapport_servers, make_agent, make_customer, consent, body
):
    make_agent("dana", extension="1001")
    make_customer("Maya Chen", consent=consent)
    page = alerted_console("dana")
    go_available(page)

    behind_another_tab(page)
    call_rings(rapport_servers, "CA-consent")
    page.wait_for_function("() => window.__shown.length === 1")
    [notification] = shown(page)
    assert notification["title"] == "Incoming call — Loyalty"
    assert notification["body"] == body
    assert "Chen" not in notification["title"] + notification["body"]


def test_an_offer_in_front_rings_but_does_not_notify_and_the_ring_stops_on_accept(
    alerted_console, rapport_servers, make_agent, make_customer
):
    make_agent("dana", extension="1001")
    make_customer("Maya Chen", consent=Consent.OPEN)
    page = alerted_console("dana")
    go_available(page)

    ring(page, rapport_servers, "CA-front")
    page.wait_for_selector("body[data-ringing='true']")
    assert page.evaluate("window.__shown") == []
    page.click("[data-accept]")
    page.wait_for_selector('[data-card][data-mode="call"]')
    page.wait_for_selector("body[data-ringing='false']")


def test_before_any_click_the_console_says_the_sound_is_off_and_a_click_turns_it_on(
    alerted_console, rapport_servers, make_agent, make_customer
):
    make_agent("dana", extension="1001", status="available")
    make_customer("Maya Chen", consent=Consent.OPEN)
    page = alerted_console("dana")

    ring(page, rapport_servers, "CA-silent")
    assert page.get_attribute("body", "data-ringing") == "true"
    assert page.get_attribute("body", "data-sound") == "locked"
    assert page.is_visible("text=Sound is off until you click anywhere in the console.")

    page.click("main", position={"x": 5, "y": 5})  # anywhere
    page.wait_for_selector("body[data-sound='on']")
    assert not page.is_visible("[data-sound-line]")


def test_mute_and_volume_are_kept_for_the_agent(alerted_console, make_agent):
    make_agent("dana", extension="1001")
    page = alerted_console("dana")

    page.fill("[data-ring-volume]", "30")
    page.click("[data-ring-mute]")
    page.reload()
    page.wait_for_selector('[data-link-state="live"]')
    assert page.get_attribute("[data-ring-mute]", "aria-pressed") == "true"
    assert page.input_value("[data-ring-volume]") == "30"


def test_a_caller_newly_waiting_for_the_agent_notifies_once(
    alerted_console, rapport_servers, make_agent, make_customer, queue
):
    dana = make_agent("dana", extension="1001")
    ruth = make_customer("Ruth Fischer", consent=Consent.OPEN)
    past_call(customer=ruth, agent=dana, queue=queue, days_ago=5)
    page = alerted_console("dana")
    go_available(page)
    # Dana is on a stranger's call when Ruth rings: Ruth is held for her (5 s), a quiet line.
    ring(page, rapport_servers, "CA-stranger", "+14155550999")
    page.keyboard.press("a")
    page.wait_for_selector('[data-card][data-mode="call"]')
    rapport_servers.post_event("call.answered", "CA-stranger", agent="1001")
    page.wait_for_selector('[data-status-label][data-status="busy"]')

    behind_another_tab(page)
    call_rings(rapport_servers, "CA-ruth", "+14155550123")
    page.wait_for_selector('[data-waiting-call="CA-ruth"]', timeout=15000)
    page.wait_for_function("() => window.__shown.length === 1")
    assert shown(page) == [
        {
            "title": "A caller is waiting for you",
            "body": "Ruth",
            "tag": "waiting-CA-ruth",
            "closed": False,
        }
    ]

    # Her wait for Dana runs out: the line goes, and so does the notification, shown once.
    page.wait_for_selector('[data-waiting-call="CA-ruth"]', state="detached", timeout=15000)
    page.wait_for_function("() => window.__shown[0].closed === true")
    assert len(shown(page)) == 1


def test_with_notifications_denied_the_console_says_why_and_still_takes_the_offer(
    alerted_console, rapport_servers, make_agent, make_customer
):
    make_agent("dana", extension="1001")
    make_customer("Maya Chen", consent=Consent.OPEN)
    page = alerted_console("dana", notifications=False)
    # Nothing is asked on page load: the agent asks, with the button, and the browser says no.
    assert page.evaluate("Notification.permission") == "default"
    page.click("text=Turn on desktop notifications")
    page.wait_for_selector("[data-notify-state][data-permission='denied']")
    assert "Desktop notifications are blocked for this site" in page.inner_text(
        "[data-notify-state]"
    )
    go_available(page)

    behind_another_tab(page)
    call_rings(rapport_servers, "CA-denied")
    wait_for_offer(page)
    assert shown(page) == []
    in_front(page)
    page.click("[data-accept]")
    page.wait_for_selector('[data-card][data-mode="call"]')


def test_the_not_ready_reason_shows_only_with_not_ready(alerted_console, make_agent):
    make_agent("dana", extension="1001")
    page = alerted_console("dana")
    assert not page.is_visible("[data-not-ready-reason]")

    page.click('[data-set-status="break"]')
    page.wait_for_selector("[data-not-ready-reason]:visible")
    go_available(page)
    assert not page.is_visible("[data-not-ready-reason]")
