from django.apps import AppConfig


class RapportConfig(AppConfig):
    name = "rapport"

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_out

        from infrastructure.broadcast import sockets_close_on_logout
        from rapport import checks  # noqa: F401  (registers the system checks)

        user_logged_out.connect(sockets_close_on_logout, dispatch_uid="rapport-sockets-logout")
