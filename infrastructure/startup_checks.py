"""Settings Rapport refuses to run with: each app registers its own system checks under
`UNSAFE_SETTINGS`, and the ASGI server, which runs no checks of its own, refuses to start on
any of them (`refuse_unsafe_settings`, called by rapport/asgi.py)."""

from django.core import checks
from django.core.exceptions import ImproperlyConfigured

UNSAFE_SETTINGS = "rapport_unsafe_settings"


def refuse_unsafe_settings() -> None:
    found = checks.run_checks(tags=[UNSAFE_SETTINGS], include_deployment_checks=True)
    errors = [error for error in found if error.is_serious()]
    if errors:
        raise ImproperlyConfigured("\n".join(str(error) for error in errors))
