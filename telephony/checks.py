"""Telephony's settings, checked at start (`manage.py check`, and the ASGI server refuses to
start on an error: infrastructure.startup_checks): a weak webhook secret, and a rate limit the
webhook could not read (it would fail every event)."""

from django.conf import settings
from django.core import checks

from infrastructure.startup_checks import UNSAFE_SETTINGS
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
