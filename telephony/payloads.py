"""What every telephony format's body goes through: parsed as one JSON object whose text
PostgreSQL can keep, nested no deeper than any real payload (infrastructure.json_bodies), and
validated by a serializer that names every bad field at once (`EventSerializer`, the base of
each format's own)."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from rest_framework import exceptions, serializers

from infrastructure.json_bodies import nested_too_deep_error, printable


class EventSerializer(serializers.Serializer):
    """A telephony format's event: a `from_` field named `from` on the wire, and fields that
    only some kinds of event require (`required_by_kind`, keyed by the `kind_field`'s value).
    Every bad field is named at once, those required by the event's kind included."""

    kind_field = "type"
    required_by_kind: dict[str, tuple[str, ...]] = {}

    def get_fields(self):
        fields = super().get_fields()
        fields["from"] = fields.pop("from_")
        return fields

    def to_internal_value(self, data):
        errors: dict[str, Any] = {}
        value = None
        try:
            value = super().to_internal_value(data)
        except exceptions.ValidationError as invalid:
            errors = dict(invalid.detail)
        kind = data.get(self.kind_field) if isinstance(data, Mapping) else None
        for name in self.required_by_kind.get(kind, ()) if isinstance(kind, str) else ():
            given = data.get(name)
            if name not in errors and (given is None or not str(given).strip()):
                errors[name] = [f"This field is required on {kind} events."]
        if errors:
            raise exceptions.ValidationError(errors)
        return value


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(f"{text[:20]} is too large a number")
    return number


def parse_json_object(body: bytes) -> dict[str, Any]:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as malformed:
        raise exceptions.ValidationError({"body": ["Not valid UTF-8."]}) from malformed
    # Before the parser sees it: no depth can make it recurse.
    too_deep = nested_too_deep_error(text)
    if too_deep is not None:
        raise too_deep
    try:
        payload = json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float)
    except ValueError as malformed:
        raise exceptions.ValidationError(
            {"body": [f"Not valid JSON: {str(malformed)[:120]}"]}
        ) from malformed
    if not isinstance(payload, dict):
        raise exceptions.ValidationError({"body": ["Expected one JSON object."]})
    check_storable(payload)
    return payload


def check_storable(payload: dict[str, Any]) -> None:
    """A 400 naming every field whose text PostgreSQL could not keep."""
    unstorable = sorted(key for key, value in payload.items() if not _storable(key, value))
    if unstorable:
        raise exceptions.ValidationError(
            {
                printable(key)[:64]: ["Text must be valid Unicode without NUL characters."]
                for key in unstorable
            }
        )


def _storable(key: str, value: Any) -> bool:
    """PostgreSQL cannot keep NUL characters or lone surrogates in text or jsonb."""
    pending = [key, value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if "\x00" in item or not item.isascii() and not _encodes(item):
                return False
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return True


def _encodes(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
