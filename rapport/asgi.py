import gc
import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rapport.settings")

from infrastructure.asgi_handler import get_asgi_application  # noqa: E402

django_asgi_app = get_asgi_application()

from infrastructure.startup_checks import refuse_unsafe_settings  # noqa: E402

refuse_unsafe_settings()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler  # noqa: E402

from console.urls import websocket_urlpatterns as agent_sockets  # noqa: E402
from infrastructure.lifespan import Lifespan  # noqa: E402
from infrastructure.metrics import process_exited  # noqa: E402
from infrastructure.request_limits import RequestBodyLimit  # noqa: E402
from rapport.warm_up import warm_server  # noqa: E402
from supervisor.urls import websocket_urlpatterns as supervisor_sockets  # noqa: E402
from telephony.signed_events.intake import TelephonyEventIntake  # noqa: E402
from telephony.webhook_answers import CountWebhookAnswers  # noqa: E402


def http_application():
    """Every HTTP request: the telephony systems' answers counted, the body capped, the
    telephony webhook answered on the event loop, static files, then Django. Built once for the
    server; the tests build their own the same way."""
    return CountWebhookAnswers(
        RequestBodyLimit(TelephonyEventIntake(ASGIStaticFilesHandler(django_asgi_app)))
    )


application = Lifespan(
    ProtocolTypeRouter(
        {
            "http": http_application(),
            "websocket": AllowedHostsOriginValidator(
                AuthMiddlewareStack(URLRouter([*agent_sockets, *supervisor_sockets]))
            ),
        }
    ),
    on_startup=warm_server,
    on_shutdown=process_exited,
)

# Everything loaded so far lives as long as the process: the garbage collector's full passes
# need not walk it. They walked it while an offer waited: with 1,000 agent sockets open, a pass
# over Django, the app and the sockets stopped the server for 50-250 ms, the screen-pop's p99
# outliers; without the startup objects a pass is a tenth of that.
gc.collect()
gc.freeze()
