"""Routing's settings, checked at start (`manage.py check`, and the ASGI server refuses to
start on an error: infrastructure.startup_checks)."""

import re

from django.conf import settings
from django.core import checks

from infrastructure.startup_checks import UNSAFE_SETTINGS

NOT_READY_REASON_CODE = re.compile(r"^[a-z][a-z0-9_]{0,31}$")


@checks.register(UNSAFE_SETTINGS)
def check_not_ready_reasons(app_configs, **kwargs) -> list[checks.CheckMessage]:
    """Each reason is stored in a 32-character field and sent as a form value: a code."""
    bad = [code for code in settings.NOT_READY_REASONS if not NOT_READY_REASON_CODE.match(code)]
    if not bad:
        return []
    return [
        checks.Error(
            f"NOT_READY_REASONS has entries that are not codes: {', '.join(map(repr, bad))}.",
            hint="Lower-case letters, digits and underscores, at most 32, e.g. "
            "NOT_READY_REASONS=break,lunch,team_meeting (shown as 'Team meeting').",
            id="rapport.E003",
        )
    ]
