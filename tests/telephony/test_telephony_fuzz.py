"""No input makes the webhook answer 500: schemathesis from the OpenAPI schema, and hypothesis."""

import itertools
import json

import pytest
import schemathesis
from django.core.wsgi import get_wsgi_application
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.telephony import EVENTS_URL, signed_headers

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("webhook_secret")]

schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", get_wsgi_application())
webhook = schema.include(path_regex="^/api/telephony/")

DOCUMENTED = {"POST": {202, 400, 401, 413, 415}, "GET": {200, 401, 404}}
FUZZ = settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
_ids = itertools.count()


def _body(case) -> bytes:
    if case.method != "POST" or not isinstance(case.body, (dict, list, str, int, float, bool)):
        return b""
    return json.dumps(case.body).encode()


def _documented(case, method: str) -> set[int]:
    """The usual answers of a `method`, and whatever else the operation's schema documents."""
    responses = case.operation.definition.raw.get("responses", {})
    return DOCUMENTED[method] | {int(code) for code in responses if str(code).isdigit()}


@webhook.parametrize()
@FUZZ
def test_schemathesis_finds_no_server_error(client, case):
    as_generated = {
        "HTTP_" + name.upper().replace("-", "_"): value
        for name, value in (case.headers or {}).items()
    }
    body = _body(case)
    for headers in (as_generated, signed_headers(body, f"msg_fuzz_{next(_ids)}")):
        response = client.generic(
            case.method, case.formatted_path, body, content_type=case.media_type or "", **headers
        )
        # Undocumented methods (schemathesis tries them too) must be refused, not crash.
        method = "GET" if case.method.upper() == "HEAD" else case.method.upper()
        documented = method == case.operation.method.upper()
        expected = _documented(case, method) if documented else {405}
        assert response.status_code in expected, response.content


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(), children, max_size=3)
    ),
    max_leaves=10,
)
sensible = {
    "type": st.sampled_from(
        [
            "call.ringing",
            "call.answered",
            "call.held",
            "call.resumed",
            "call.transferred",
            "call.ended",
        ]
    ),
    "call_id": st.sampled_from(["CA1", "CA2", "CA3"]) | st.text(min_size=1, max_size=140),
    "occurred_at": st.datetimes(timezones=st.timezones()).map(lambda when: when.isoformat()),
    "from": st.sampled_from(["+14155550123", "(415) 555-0123", "anonymous"]) | st.text(),
    "to": st.sampled_from(["+18005550100", "+18005550999"]) | st.text(max_size=70),
    "queue": st.sampled_from(["loyalty", "nope"]) | st.text(max_size=60),
    "agent": st.sampled_from(["1001", "ghost"]) | st.text(max_size=70),
    "reason": st.sampled_from(["completed", "abandoned", "busy", "failed", "no-answer"]),
    "metadata": st.dictionaries(st.text(max_size=5), json_values, max_size=3),
}
# Mostly sensible events (so many are accepted), each field sometimes absent or anything at all.
event_fields = st.fixed_dictionaries(
    {},
    optional={name: values | json_values for name, values in sensible.items()}
    | {"extra": json_values},
) | st.fixed_dictionaries({name: values for name, values in sensible.items()})


@given(payload=event_fields)
@FUZZ
def test_generated_events_are_accepted_or_refused_by_name(phone_system, queue, payload):
    response = phone_system.post(payload, webhook_id=f"msg_gen_{next(_ids)}")

    assert response.status_code in (202, 400), response.content
    if response.status_code == 400:
        assert response.json()["errors"]


@given(body=st.binary(min_size=1, max_size=300) | st.text(min_size=1, max_size=300).map(str.encode))
@FUZZ
def test_generated_raw_bodies_never_break_it(client, body):
    headers = signed_headers(body.decode("utf-8", "replace"), f"msg_raw_{next(_ids)}")

    response = client.generic("POST", EVENTS_URL, body, content_type="application/json", **headers)

    assert response.status_code in (202, 400, 401)
