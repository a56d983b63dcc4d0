"""LOG_FORMAT=json: every line one JSON object a machine can read, each routing and telephony
line naming its call and agent as fields, and card numbers and the Generic CTI token masked as
in the plain lines."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys

import pytest
from django.conf import settings
from django.utils.module_loading import import_string

from infrastructure.paths import BASE_DIR
from routing.models import Offer
from tests.support.telephony import event, ringing

CARD = "4111 1111 1111 1111"

_LOG_IN_A_PROCESS = f"""
import logging

import django

django.setup()
from infrastructure.log_fields import call_fields

logging.getLogger("telephony.applying").warning(
    "call %r: caller read out {CARD}", "CA-json", extra=call_fields("CA-json", 7)
)
logging.getLogger("django.request").warning(
    "Bad Request: /api/telephony/cti/a-cti-token-never-shown-7f3e9b1d5c/"
)
try:
    raise ValueError("card {CARD} refused")
except ValueError:
    logging.getLogger("routing.offers").exception("offer 3: failed", extra=call_fields(agent_id=7))
"""


def test_a_process_started_with_log_format_json_writes_one_masked_object_a_line():
    environment = {
        **os.environ,
        "LOG_FORMAT": "json",
        "DJANGO_SETTINGS_MODULE": "rapport.settings",
        "TELEPHONY_CTI_TOKEN": "a-cti-token-never-shown-7f3e9b1d5c",
    }
    run = subprocess.run(
        [sys.executable, "-c", _LOG_IN_A_PROCESS],
        cwd=BASE_DIR,
        env=environment,
        capture_output=True,
        text=True,
        check=True,
    )

    lines = [json.loads(line) for line in run.stderr.splitlines() if line.strip()]
    assert [line["logger"] for line in lines] == [
        "telephony.applying",
        "django.request",
        "routing.offers",
    ]
    applied, refused, failed = lines
    assert applied["message"] == "call 'CA-json': caller read out **** **** **** 1111"
    assert (applied["call_id"], applied["agent_id"], applied["level"]) == ("CA-json", 7, "WARNING")
    assert "time" in applied
    assert (refused["call_id"], refused["agent_id"]) == (None, None)
    assert "never-shown" not in run.stderr
    assert (failed["call_id"], failed["agent_id"]) == (None, 7)
    assert "ValueError: card **** **** **** 1111 refused" in failed["exc_info"]
    assert "4111 1111" not in run.stderr


@pytest.fixture
def json_lines():
    """The root logger also writes through the JSON formatter and the handler's filters as
    the settings configure them (LOG_FORMAT=json), into a buffer."""
    formatter_config = dict(settings.LOGGING["formatters"]["json"])
    formatter = import_string(formatter_config.pop("()"))(**formatter_config)
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(formatter)
    for name in settings.LOGGING["handlers"]["console"]["filters"]:
        handler.addFilter(import_string(settings.LOGGING["filters"][name]["()"])())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield lambda: [json.loads(line) for line in buffer.getvalue().splitlines()]
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("webhook_secret")
def test_every_routing_and_telephony_line_of_a_call_names_its_call_and_agent(
    phone_system, make_agent, json_lines
):
    dana = make_agent("dana", extension="dana", status="available")

    phone_system.post(ringing("CA-fields"))
    offer = Offer.objects.get(call__telephony_call_id="CA-fields")
    phone_system.post(event("call.answered", "CA-fields", agent="dana"))

    lines = [line for line in json_lines() if line["logger"].startswith(("routing.", "telephony."))]
    assert [line["message"] for line in lines] == [
        "call 'CA-fields': call.ringing, now queued",
        f"call 'CA-fields': routed, longest_idle, offered to agent {dana.id}",
        "call 'CA-fields': call.answered, now connected",
    ]
    assert {line["call_id"] for line in lines} == {"CA-fields"}
    assert [line["agent_id"] for line in lines] == [None, dana.id, dana.id]
    assert offer.agent_id == dana.id


def test_an_unknown_log_format_is_refused_at_start(settings):
    from django.core import checks

    settings.LOG_FORMAT = "yaml"

    found = checks.run_checks(include_deployment_checks=True)

    assert [error.id for error in found if error.id == "rapport.E008"] == ["rapport.E008"]
