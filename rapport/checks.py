"""The project's own checks: the development SECRET_KEY outside a developer's machine (a
deployment check, `check --deploy`, so `makemigrations` and the like still run on a developer's
machine), a weak METRICS_TOKEN and an unknown LOG_FORMAT. The ASGI server refuses to start on
any of them (infrastructure.startup_checks).
"""

from django.conf import settings
from django.core import checks

from infrastructure.startup_checks import UNSAFE_SETTINGS
from infrastructure.tokens import weak_token_problem

LOG_FORMATS = ("plain", "json")


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


@checks.register(UNSAFE_SETTINGS)
def check_metrics_token(app_configs, **kwargs) -> list[checks.CheckMessage]:
    """The token is `/metrics`' only credential (it is never shown here)."""
    token = settings.METRICS_TOKEN
    problem = weak_token_problem(token) if token else None
    if problem is None:
        return []
    return [
        checks.Error(
            f"METRICS_TOKEN {problem}.",
            hint='Make one with: python -c "import secrets;print(secrets.token_urlsafe(32))"',
            id="rapport.E007",
        )
    ]


@checks.register(UNSAFE_SETTINGS)
def check_log_format(app_configs, **kwargs) -> list[checks.CheckMessage]:
    if settings.LOG_FORMAT in LOG_FORMATS:
        return []
    return [
        checks.Error(
            f"LOG_FORMAT {settings.LOG_FORMAT!r} is not a log format.",
            hint="plain (the default: one line of text a record) or json (one JSON object).",
            id="rapport.E008",
        )
    ]
