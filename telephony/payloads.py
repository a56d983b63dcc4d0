"""What every telephony format's body goes through: parsed as one JSON object whose text
PostgreSQL can keep, nested no deeper than any real payload, and validated by a serializer that
names every bad field at once (`EventSerializer`, the base of each format's own)."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any

from rest_framework import exceptions, serializers

# Containers within one field's value (metadata nested in metadata ...): far beyond any real
# telephony payload, and far below where parsing, masking or storing would recurse too deep.
MAX_FIELD_NESTING = 32


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
    too_deep = _field_nested_too_deep(text)
    if too_deep is not None:
        raise exceptions.ValidationError(
            {too_deep: [f"Nested more than {MAX_FIELD_NESTING} levels deep."]}
        )
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
                _printable(key)[:64]: ["Text must be valid Unicode without NUL characters."]
                for key in unstorable
            }
        )


_JSON_STRING_OR_BRACKET = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]')


def _field_nested_too_deep(text: str) -> str | None:
    """The top-level field whose value nests deeper than MAX_FIELD_NESTING ("body" when the
    body itself does), read from the raw text: the parser never sees such a body, so no depth
    can make it recurse. Strings are skipped whole, so brackets inside them do not count."""
    if text.count("[") + text.count("{") <= MAX_FIELD_NESTING:
        return None
    depth = 0
    last_top_level_string = ""
    for token in _JSON_STRING_OR_BRACKET.finditer(text):
        piece = token.group()
        if piece[0] == '"':
            # In an object, the last string before a value opens is that value's key.
            if depth == 1:
                last_top_level_string = piece
        elif piece in "[{":
            depth += 1
            if depth > MAX_FIELD_NESTING + 1:
                return _field_name(last_top_level_string)
        else:
            depth -= 1
    return None


def _field_name(json_string: str) -> str:
    try:
        name = json.loads(json_string) if json_string else ""
    except ValueError:
        name = ""
    return _printable(name)[:64] or "body"


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


def _printable(text: str) -> str:
    return text.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\x00")


def _encodes(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
