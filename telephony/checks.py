"""Telephony's settings, checked at start (`manage.py check`, and the ASGI server refuses to
start on an error: infrastructure.startup_checks): a weak webhook secret or Generic CTI token,
and a rate limit the webhook or Generic CTI could not read (it would fail every request)."""

from django.conf import settings
from django.core import checks

from infrastructure.startup_checks import UNSAFE_SETTINGS
from infrastructure.tokens import weak_token_problem
from telephony.generic_cti.token import token_problem
from telephony.signed_events.rate_limit import parse_rate
from telephony.signing import secret_problem


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


@checks.register(UNSAFE_SETTINGS)
def check_telephony_rate_limit(app_configs, **kwargs) -> list[checks.CheckMessage]:
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


@checks.register(UNSAFE_SETTINGS)
def check_cti_token(app_configs, **kwargs) -> list[checks.CheckMessage]:
    """The token is the Generic CTI endpoint's only credential (it is never shown here)."""
    errors = []
    token = settings.TELEPHONY_CTI_TOKEN
    problem = token_problem(token) if token else None
    if problem is not None:
        errors.append(
            checks.Error(
                f"TELEPHONY_CTI_TOKEN {problem}.",
                hint='Make one with: python -c "import secrets;print(secrets.token_urlsafe(32))"',
                id="rapport.E005",
            )
        )
    rate = settings.TELEPHONY_CTI_GUESS_LIMIT
    try:
        parse_rate(rate)
    except ValueError:
        errors.append(
            checks.Error(
                f"TELEPHONY_CTI_GUESS_LIMIT {rate!r} is not a rate.",
                hint="Wrong tokens per period from one address, e.g. 10/m or 100/h.",
                id="rapport.E006",
            )
        )
    return errors


@checks.register(UNSAFE_SETTINGS)
def check_softphone_secret(app_configs, **kwargs) -> list[checks.CheckMessage]:
    """The secret signs every softphone's password: whoever guesses it registers as any agent."""
    secret = settings.SOFTPHONE_SHARED_SECRET
    problem = weak_token_problem(secret) if secret else None
    if problem is None:
        return []
    return [
        checks.Error(
            f"SOFTPHONE_SHARED_SECRET {problem}.",
            hint='Make one with: python -c "import secrets;print(secrets.token_urlsafe(32))"; '
            "give Kamailio the same (deploy/kamailio/kamailio.cfg, SOFTPHONE_SHARED_SECRET).",
            id="rapport.E009",
        )
    ]
