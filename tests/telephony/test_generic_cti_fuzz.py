"""No Generic CTI body makes Rapport answer 500 or anything but a JSON object: PBX clients parse
every answer. Hypothesis posts form and JSON bodies with the right token."""

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.generic_cti import TOKEN

pytestmark = pytest.mark.django_db

URL = f"/api/telephony/cti/{TOKEN}/"
FIELDS = ["event", "callId", "from", "to", "direction", "user", "user[]", "queue"]
FIELDS += ["answeringNumber", "cause"]
sensible = {
    "event": st.sampled_from(["newCall", "answer", "hangup", "ringing", ""]),
    "callId": st.text(max_size=140),
    "direction": st.sampled_from(["in", "out", "sideways"]),
    "cause": st.sampled_from(["normalClearing", "busy", "cancel", "exploded", ""]),
    "user": st.lists(st.text(max_size=20), max_size=3),
    "answeringNumber": st.sampled_from(["1001", "dana", "", "x" * 70]),
}
values = st.one_of(st.text(max_size=80), st.integers(), st.none(), st.lists(st.text(), max_size=3))
bodies = st.fixed_dictionaries(
    {},
    optional={name: sensible.get(name, values) for name in FIELDS},
)
FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture(autouse=True)
def cti_on(settings, make_agent):
    settings.TELEPHONY_CTI_TOKEN = TOKEN
    make_agent("dana", extension="1001")


@FUZZ
@given(body=bodies, as_json=st.booleans())
def test_no_body_gets_a_server_error_or_a_non_json_answer(client, body, as_json):
    if as_json:
        response = client.post(URL, json.dumps(body), content_type="application/json")
    else:
        form = {
            name: value
            for name, value in body.items()
            if value is not None and not isinstance(value, int)
        }
        response = client.post(URL, form)

    assert response.status_code in (200, 400), response.content
    assert isinstance(response.json(), dict)


@pytest.mark.parametrize(
    "field", ["callId", "from", "queue", "answeringNumber", "user", "metadata"]
)
def test_text_postgresql_cannot_keep_is_a_400_naming_the_field(client, field):
    body = {"event": "newCall", "callId": "cti-1", "from": "+14155550123", "to": "+18005550100"}
    body[field] = ["bad\ud800"] if field == "user" else "bad\ud800\x00"

    response = client.post(URL, json.dumps(body), content_type="application/json")

    assert response.status_code == 400, response.content
    assert field in response.json()["errors"]
