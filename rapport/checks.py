"""Settings Rapport refuses to run with.

`manage.py check` reports a weak webhook secret as an error; the development SECRET_KEY is a
deployment check (`check --deploy`), so `makemigrations` and the like still run on a developer's
machine. The ASGI server refuses to start on either (`refuse_unsafe_settings`, called by
rapport/asgi.py), since uvicorn runs no checks of its own.
"""

import re

from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured

from telephony.rate_limit import parse_rate
from telephony.signing import secret_problem

UNSAFE_SETTINGS = "rapport_unsafe_settings"


@checks.register(UNSAFE_SETTINGS)
def check_webhook_secrets(app_configs, **kwargs) -> list[checks.CheckMessage]:
    configured = settings.TELEPHONY_WEBHOOK_SECRET
    if isinstance(configured, str):
        configured = [configured]
    secrets = [secret.strip() for secret in configured if secret.strip()]
    errors = []
    for position, secret in enumerate(secrets):
        problem = secret_problem(secret)
        if problem is not None:
            errors.append(
                checks.Error(
                    f"TELEPHONY_WEBHOOK_SECRET entry {position} {problem}.",
                    hint='Make one with: python -c "import base64,os;'
                    "print('whsec_'+base64.b64encode(os.urandom(24)).decode())\"",
                    id="rapport.E001",
                )
            )
    return errors


@checks.register(UNSAFE_SETTINGS, deploy=True)
def check_secret_key(app_configs, **kwargs) -> list[checks.CheckMessage]:
    if settings.DEBUG or settings.DEVELOPMENT:
        return []
    if settings.SECRET_KEY != settings.DEVELOPMENT_SECRET_KEY:
        return []
    return [
        checks.Error(
            "SECRET_KEY is the development key (unset), and DEBUG is off: sessions and "
            "password resets could be forged by anyone who read the source.",
            hint='Set SECRET_KEY to a long random value (python -c "import secrets;'
            "print(secrets.token_urlsafe(50))\"); on a developer's machine set "
            "RAPPORT_DEVELOPMENT=1 (make run does).",
            id="rapport.E002",
        )
    ]


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


@checks.register(UNSAFE_SETTINGS)
def check_telephony_rate_limit(app_configs, **kwargs) -> list[checks.CheckMessage]:
    """A rate the webhook could not read would fail every event: refused at start instead."""
    rate = settings.TELEPHONY_RATE_LIMIT
    if not rate:
        return []
    try:
        parse_rate(rate)
    except ValueError:
        return [
            checks.Error(
                f"TELEPHONY_RATE_LIMIT {rate!r} is not a rate.",
                hint="Requests per period, e.g. 200/s, 3000/m or 100000/h; empty turns it off.",
                id="rapport.E004",
            )
        ]
    return []


def refuse_unsafe_settings() -> None:
    found = checks.run_checks(tags=[UNSAFE_SETTINGS], include_deployment_checks=True)
    errors = [error for error in found if error.is_serious()]
    if errors:
        raise ImproperlyConfigured("\n".join(str(error) for error in errors))
