"""JSON request bodies, nested no deeper than any real one: the depth is read from the raw text
before a parser sees it, so no body can make parsing (or anything after it) recurse too deep. A
5,000-deep body used to reach Python's recursion limit inside `json.loads`: a RecursionError,
answered by Django's HTML 500.

`JSONParser` is the API's parser for every DRF view (settings.REST_FRAMEWORK); the telephony
formats read their bodies with the same rule (telephony.payloads).
"""

from __future__ import annotations

import json
import re
from typing import Any

from django.conf import settings
from rest_framework import exceptions, parsers
from rest_framework.utils import json as drf_json

# Containers within one field's value (metadata nested in metadata ...): far beyond any real
# request, and far below where parsing, masking or storing would recurse too deep.
MAX_FIELD_NESTING = 32

_JSON_STRING_OR_BRACKET = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]')


def nested_too_deep_error(text: str) -> exceptions.ValidationError | None:
    """The 400 for a body with a field nested deeper than MAX_FIELD_NESTING, naming the field;
    None when the body is not."""
    too_deep = field_nested_too_deep(text)
    if too_deep is None:
        return None
    return exceptions.ValidationError(
        {too_deep: [f"Nested more than {MAX_FIELD_NESTING} levels deep."]}
    )


def field_nested_too_deep(text: str) -> str | None:
    """The top-level field whose value nests deeper than MAX_FIELD_NESTING ("body" when the
    body itself does), read from the raw text. Strings are skipped whole, so brackets inside
    them do not count."""
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


def printable(text: str) -> str:
    """`text` as it may be shown in an answer: lone surrogates and NUL escaped."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\x00")


def _field_name(json_string: str) -> str:
    try:
        name = json.loads(json_string) if json_string else ""
    except ValueError:
        name = ""
    return printable(name)[:64] or "body"


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser, refusing a body nested deeper than MAX_FIELD_NESTING with a 400 that
    names the field, before parsing it."""

    def parse(self, stream, media_type=None, parser_context=None) -> Any:
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        try:
            text = stream.read().decode(encoding)
        except UnicodeDecodeError as malformed:
            raise exceptions.ParseError(f"JSON parse error - not {encoding}.") from malformed
        too_deep = nested_too_deep_error(text)
        if too_deep is not None:
            raise too_deep
        try:
            return drf_json.loads(
                text, parse_constant=drf_json.strict_constant if self.strict else None
            )
        except (ValueError, RecursionError) as malformed:
            raise exceptions.ParseError(f"JSON parse error - {str(malformed)[:120]}") from malformed
