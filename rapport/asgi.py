import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rapport.settings")

from rapport.sync_middleware import get_asgi_application  # noqa: E402

django_asgi_app = get_asgi_application()

from rapport.checks import refuse_unsafe_settings  # noqa: E402

refuse_unsafe_settings()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler  # noqa: E402

from console.urls import websocket_urlpatterns as agent_sockets  # noqa: E402
from rapport.request_limits import RequestBodyLimit  # noqa: E402
from supervisor.urls import websocket_urlpatterns as supervisor_sockets  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": RequestBodyLimit(ASGIStaticFilesHandler(django_asgi_app)),
        "websocket": AllowedHostsOriginValidator(
            AuthMiddlewareStack(URLRouter([*agent_sockets, *supervisor_sockets]))
        ),
    }
)
