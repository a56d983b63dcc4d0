from django.apps import AppConfig


class DevelopmentConfig(AppConfig):
    """A developer's machine: `manage.py up` (the whole system with embedded servers), the demo
    data and the simulated phone line. Nothing production runs imports it."""

    name = "development"
    verbose_name = "Development"
