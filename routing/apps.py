from django.apps import AppConfig


class RoutingConfig(AppConfig):
    name = "routing"
    verbose_name = "Routing"

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_out

        from infrastructure.broadcast import sockets_close_on_logout

        user_logged_out.connect(sockets_close_on_logout, dispatch_uid="routing-sockets-logout")
