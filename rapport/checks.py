"""The project's own check: the development SECRET_KEY outside a developer's machine.

A deployment check (`check --deploy`), so `makemigrations` and the like still run on a
developer's machine; the ASGI server refuses to start on it (infrastructure.startup_checks).
"""

from django.conf import settings
from django.core import checks

from infrastructure.startup_checks import UNSAFE_SETTINGS


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
