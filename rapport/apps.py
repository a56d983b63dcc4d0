from django.apps import AppConfig


class RapportConfig(AppConfig):
    name = "rapport"

    def ready(self) -> None:
        from rapport import checks  # noqa: F401  (registers the system checks)
