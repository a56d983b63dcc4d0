"""The softphone's parts that need no PBX, in Chromium against the real server with a softphone
configured: the PBX unreachable reads "Phone reconnecting…", and a refused microphone says what
to do. The phone with a real PBX (Kamailio, rtpengine, a SIP caller) is tests/system/
test_softphone.py."""

from collections.abc import Iterator

import pytest

from routing.states import AgentStatus
from tests.support.browser import go_available
from tests.support.servers import RapportServers, free_port, served

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(120),
]

MICROPHONE_REFUSED = "Rapport needs your microphone to answer calls in the browser"


@pytest.fixture(scope="module")
def softphone_server(django_db_setup, django_db_blocker) -> Iterator[RapportServers]:
    """The web server with a softphone whose PBX nobody answers: a port nothing listens on."""
    extra_env = {
        "SOFTPHONE_SHARED_SECRET": "softphone-test-secret-5b1e0c7d9a3f",
        "SOFTPHONE_WEBSOCKET_URL": f"ws://127.0.0.1:{free_port()}",
        "SOFTPHONE_SIP_DOMAIN": "rapport.test",
    }
    with django_db_blocker.unblock(), served(with_worker=False, extra_env=extra_env) as servers:
        yield servers


def test_a_refused_microphone_says_what_to_do_and_an_unreachable_pbx_reads_reconnecting(
    open_console, softphone_server, make_agent
):
    make_agent("dana", extension="1001", status=AgentStatus.BREAK)
    # Headless Chromium without the fake-UI flag answers the microphone prompt "block".
    page = open_console("dana", on=softphone_server)

    page.wait_for_selector('[data-phone-state="reconnecting"]:has-text("Phone reconnecting")')
    assert page.is_hidden("[data-phone-mic]"), "asked before the agent is Available"

    go_available(page)

    message = page.wait_for_selector("[data-phone-mic]:not([hidden])")
    assert MICROPHONE_REFUSED in message.inner_text()
    assert "use your desk phone" in message.inner_text()
