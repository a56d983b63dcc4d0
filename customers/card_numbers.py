"""Payment card numbers never reach storage or logs: find them, keep only the last four digits.

A card number here is 13 to 19 digits, optionally grouped with spaces (any of Unicode's,
non-breaking and zero-width ones included), dashes (hyphens, en and em dashes, minus signs),
dots, slashes, underscores, tabs or line breaks, that passes the Luhn check. In JSON-like values
(event metadata) keys are masked as well as values. This module imports no models, so the
logging configuration (which loads before the apps) and the telephony code can both use it.
"""

from __future__ import annotations

import itertools
import re

from infrastructure.log_filters import RewritingFilter

MASK = "*"

# What may stand between two groups of a card's digits: what a keyboard, a word processor or a
# phone's text field puts there. Spaces: no-break (U+00A0), the typographic ones (U+2000 to
# U+200A), zero-width (U+200B to U+200D, U+2060, U+FEFF), narrow no-break (U+202F) and the
# others Unicode counts as spaces. Dashes: hyphens (U+2010, U+2011), figure, en and em dashes
# (U+2012 to U+2015), minus (U+2212) and their small and full-width forms.
_SEPARATORS = (
    " \t\r\n._/\\-"
    "\u00a0\u1680\u2000-\u200d\u2028\u2029\u202f\u205f\u2060\u3000\ufeff"
    "\u2010-\u2015\u2212\ufe58\ufe63\uff0d"
)
# A run of digit groups joined by up to three separators ("4111 - 1111", "4111.1111",
# "4111\r\n1111"), not glued to other digits. Dates and phone numbers written with the same
# separators have too few digits to be a card.
_DIGIT_RUN = re.compile(rf"(?<!\d)\d+(?:[{_SEPARATORS}]{{1,3}}\d+)*(?!\d)")
_GROUP = re.compile(r"\d+")


def passes_luhn(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2 == 1:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def _is_card_number(digits: str) -> bool:
    return 13 <= len(digits) <= 19 and passes_luhn(digits)


def _mask_digits(text: str) -> str:
    """Every digit but the last four becomes MASK; the separators stay where they were."""
    digit_count = sum(char.isdigit() for char in text)
    seen = 0
    masked = []
    for char in text:
        if char.isdigit():
            seen += 1
            masked.append(char if seen > digit_count - 4 else MASK)
        else:
            masked.append(char)
    return "".join(masked)


def _card_spans(run: str) -> list[tuple[int, int]]:
    """Within one run of digit groups, the longest card numbers made of whole groups.

    Groups are tried from each starting group, so "ref 12 4111 1111 1111 1111" still finds the
    card after the stray "12".
    """
    groups = [(match.start(), match.end()) for match in _GROUP.finditer(run)]
    spans: list[tuple[int, int]] = []
    first = 0
    while first < len(groups):
        best_last = None
        digits = ""
        for last in range(first, len(groups)):
            digits += run[groups[last][0] : groups[last][1]]
            if len(digits) > 19:
                break
            if _is_card_number(digits):
                best_last = last
        if best_last is None:
            first += 1
            continue
        spans.append((groups[first][0], groups[best_last][1]))
        first = best_last + 1
    return spans


def mask_card_numbers(text: str) -> str:
    """`text` with every card-like number masked to its last four digits ("**** **** **** 1111")."""
    if not text or not any(char.isdigit() for char in text):
        return text

    def mask_run(match: re.Match[str]) -> str:
        run = match.group(0)
        spans = _card_spans(run)
        if not spans:
            return run
        pieces = []
        cursor = 0
        for start, end in spans:
            pieces.append(run[cursor:start])
            pieces.append(_mask_digits(run[start:end]))
            cursor = end
        pieces.append(run[cursor:])
        return "".join(pieces)

    return _DIGIT_RUN.sub(mask_run, text)


def mask_card_numbers_in(value):
    """The same masking applied to every string inside a JSON-like value (event metadata), the
    keys of its objects included. Two keys masked alike stay two keys ("**** 1111", then
    "**** 1111 (2)"), so no value is lost.

    A copy is built with an explicit stack, not recursion, so no nesting depth can crash it.
    """
    root = [value]
    pending: list[tuple[list | dict, int | str]] = [(root, 0)]
    while pending:
        container, key = pending.pop()
        item = container[key]
        if isinstance(item, str):
            container[key] = mask_card_numbers(item)
        elif isinstance(item, dict):
            copy = _with_masked_keys(item)
            container[key] = copy
            pending.extend((copy, name) for name in copy)
        elif isinstance(item, list | tuple):
            copy = list(item)
            container[key] = copy
            pending.extend((copy, position) for position in range(len(copy)))
    return root[0]


def _with_masked_keys(mapping: dict) -> dict:
    copy: dict = {}
    for name, item in mapping.items():
        masked = mask_card_numbers(name) if isinstance(name, str) else name
        if masked in copy:
            masked = next(
                f"{masked} ({n})" for n in itertools.count(2) if f"{masked} ({n})" not in copy
            )
        copy[masked] = item
    return copy


class CardNumberFilter(RewritingFilter):
    """Installed on the log handlers: a card number in a message or a traceback is masked."""

    def rewrite(self, text: str) -> str:
        return mask_card_numbers(text)
