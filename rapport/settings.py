"""Rapport settings, all from the environment (twelve-factor, via django-environ).

When DATABASE_URL / REDIS_URL are unset, `manage.py up` and the test runner start embedded
PostgreSQL and Redis and export the URLs before Django loads; nothing starts here.
"""

import os
from datetime import timedelta

import environ

from development.running_services import SERVICE_VARIABLES, recorded_service_urls
from infrastructure.paths import BASE_DIR, RUNTIME_DIR
from infrastructure.schedules import WhileAnythingToDo

env = environ.Env()

# Where DATABASE_URL and REDIS_URL come from: the environment, else the embedded servers of a
# running `manage.py up` (so commands in another terminal share its data), else the defaults.
_RECORDED_SERVICE_URLS = recorded_service_urls(RUNTIME_DIR / "dev")
SERVICE_URL_SOURCES = {
    name: "environment"
    if os.environ.get(name)
    else ("make run" if name in _RECORDED_SERVICE_URLS else "default")
    for name in SERVICE_VARIABLES
}

DEBUG = env.bool("DEBUG", default=False)
# A developer's machine: `make run` and the test suite say so for the processes they start, and
# a live `make run` says so for the commands beside it. Only there (or with DEBUG) is the
# development SECRET_KEY accepted (rapport/checks.py refuses it elsewhere) and plain HTTP the
# default; everywhere else production is secure without being asked.
DEVELOPMENT = env.bool("RAPPORT_DEVELOPMENT", default=bool(_RECORDED_SERVICE_URLS))
DEVELOPMENT_SECRET_KEY = "django-insecure-dev-only-set-SECRET_KEY-in-production"
SECRET_KEY = env.str("SECRET_KEY", default=DEVELOPMENT_SECRET_KEY)
# Served over plain HTTP on purpose (a developer's machine, or an intranet without TLS): no
# Secure cookies, HTTPS redirect or HSTS. `check --deploy` still reports each of them.
INSECURE_HTTP = env.bool("INSECURE_HTTP", default=DEBUG or DEVELOPMENT)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
# No request body may be larger, whatever the URL: refused before it is read
# (infrastructure/request_limits.py). The webhook allows far less (64 KiB), and no form comes close.
MAX_REQUEST_BODY_BYTES = env.int("MAX_REQUEST_BODY_BYTES", default=1024 * 1024)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "axes",
    "rapport",
    "development",
    # The layers, lowest first: each app imports only from the apps listed before it (README).
    "customers",
    "routing",
    "telephony",
    "console",
    "supervisor",
    "privacy",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "infrastructure.content_security_policy.ContentSecurityPolicyMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: it turns a locked-out login into a refusal.
    "axes.middleware.AxesMiddleware",
]
# Under uvicorn the chain and the view run in the request's one thread: infrastructure.asgi_handler.

ROOT_URLCONF = "rapport.urls"
ASGI_APPLICATION = "rapport.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": env.db_url(
        "DATABASE_URL",
        default=_RECORDED_SERVICE_URLS.get(
            "DATABASE_URL", "postgres://postgres@localhost:5432/rapport"
        ),
    ),
}
DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("DB_CONN_MAX_AGE", default=60))
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
# Django's backend, checking a kept or pooled connection only after it sat idle (see the module).
DATABASES["default"]["ENGINE"] = "infrastructure.database.postgresql"
# Under the ASGI server each request's sync code runs in a thread of its own, lent from a pool
# of up to 64 idle threads (infrastructure.asgi_handler): per-thread persistent connections would
# mean a PostgreSQL connection per thread; a process-wide pool (DB_POOL_MAX_SIZE > 0, e.g. for
# uvicorn) shares a few among them instead.
if env.int("DB_POOL_MAX_SIZE", default=0) > 0:
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = False
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": 1,
        "max_size": env.int("DB_POOL_MAX_SIZE"),
        "timeout": 10,
    }
# The event loop's own connections (infrastructure.database.on_loop: the webhook's intake, the
# sockets' session checks): how many per lane, and how long a statement may wait for a lock or
# run before it fails (the intake then answers 503 with Retry-After).
DB_LOOP_CONNECTIONS = env.int("DB_LOOP_CONNECTIONS", default=4)
DB_LOOP_LOCK_TIMEOUT_SECONDS = env.float("DB_LOOP_LOCK_TIMEOUT_SECONDS", default=2.0)
DB_LOOP_STATEMENT_TIMEOUT_SECONDS = env.float("DB_LOOP_STATEMENT_TIMEOUT_SECONDS", default=5.0)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env.str(
    "REDIS_URL", default=_RECORDED_SERVICE_URLS.get("REDIS_URL", "redis://127.0.0.1:6379/0")
)

CACHES = {
    "default": {
        "BACKEND": "infrastructure.cache.SharedPoolRedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": env.str("CACHE_PREFIX", default="rapport-cache"),
    }
}

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "infrastructure.channel_layer.PatientRedisChannelLayer",
        "CONFIG": {
            # channels_redis blocks 5 s in BZPOPMIN; redis-py's own 5 s socket timeout would race
            # it and kill an idle consumer, so the socket waits longer than the server does.
            # A command waits up to `timeout` seconds for one of `max_connections` to be free.
            "hosts": [
                {"address": REDIS_URL, "socket_timeout": 30, "max_connections": 64, "timeout": 20}
            ],
            "prefix": env.str("CHANNELS_PREFIX", default="rapport"),
        },
    }
}

CELERY_BROKER_URL = REDIS_URL
# kombu's Redis transport, with one client per channel rather than one per publish (see module).
CELERY_BROKER_TRANSPORT = "infrastructure.broker:Transport"
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Celery's Django fixup closes the database connection before and after every task unless told
# to reuse it (celery#4116, reverted again in #9824): a new PostgreSQL connection for every
# route_call, 6-7 ms on the screen-pop's path, and every prepared statement lost with it.
# rapport.celery closes connections around each task by Django's own rules instead.
CELERY_DB_REUSE_MAX = 1_000_000_000
CELERY_TASK_DEFAULT_QUEUE = env.str("CELERY_QUEUE", default="rapport")
# A short visibility timeout lets Redis hand a task whose worker died to another worker soon;
# every task is idempotent, so an early redelivery costs only a no-op.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", 300)}
# Beat's schedule file is started afresh when it names code that moved (an upgrade).
CELERY_BEAT_SCHEDULER = "infrastructure.schedules:ForgivingPersistentScheduler"
# A live call the telephony system has sent nothing about, and whose state has not changed, for
# this long is ended as `lost` by a sweep (its hang-up never came), so nobody stays busy
# overnight: telephony.lost_calls. Asked for at most every minute, and only while such a call is.
TELEPHONY_SILENT_CALL_SECONDS = env.float("TELEPHONY_SILENT_CALL_SECONDS", default=4 * 3600.0)
CELERY_BEAT_SCHEDULE: dict = {
    # The router's timers are database deadlines; this sweeper acts on the ones that passed and
    # routes calls whose hand-off was lost (the broker was down when they arrived). Sent only
    # while a call, an offer or a wrap-up is in flight: a quiet line costs beat one query.
    "routing-sweep": {
        "task": "routing.sweep",
        "schedule": WhileAnythingToDo(
            timedelta(seconds=env.float("ROUTER_SWEEP_SECONDS", default=1.0)),
            check="routing.selectors.anything_to_sweep",
        ),
        "options": {"expires": 10},
    },
    # The webhook's intake records an event and publishes its task; an event whose task was
    # lost is applied by this one, sent only while such an event waits. Lost means waiting
    # 5 s (telephony.selectors.EVENT_TASK_LOST_AFTER), so asking more often buys nothing and
    # costs beat a query a second on a quiet line.
    "telephony-events-waiting-too-long": {
        "task": "telephony.apply_events_waiting_too_long",
        "schedule": WhileAnythingToDo(
            timedelta(seconds=env.float("TELEPHONY_LOST_EVENTS_SECONDS", default=5.0)),
            check="telephony.selectors.anything_to_apply",
        ),
        "options": {"expires": 10},
    },
    "telephony-silent-calls": {
        "task": "telephony.end_silent_calls",
        "schedule": WhileAnythingToDo(
            timedelta(seconds=min(60.0, max(0.5, TELEPHONY_SILENT_CALL_SECONDS / 4))),
            check="telephony.lost_calls.any_silent_call",
        ),
        "options": {"expires": 60},
    },
    # A `call.connect` or `call.transfer` push (or Twilio REST update) that was lost is sent
    # again; asked only while a call waits to be connected to the agent who took it, or to the
    # colleague who accepted its hand-off.
    "telephony-lost-connects": {
        "task": "telephony.resend_lost_connects",
        "schedule": WhileAnythingToDo(
            timedelta(seconds=env.float("ROUTER_SWEEP_SECONDS", default=1.0)),
            check="telephony.connect.any_connect_pending",
        ),
        "options": {"expires": 10},
    },
}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/accounts/login/"

# Reverse proxies in front of the server; 0 means the peer address is the client (an
# X-Forwarded-For header alone could dodge a limit or frame someone else's address).
NUM_PROXIES = env.int("NUM_PROXIES", default=0)

# Login throttling (django-axes): the fifth wrong password for a username from one address
# locks that login (429) until the cool-off has passed: only for that address, so others'
# mistakes never lock a person out of their own. Behind a proxy the address is the client's
# as the proxies report it (infrastructure/client_address.py), not the proxy's, which is everyone's.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = env.float("LOGIN_COOLOFF_HOURS", default=0.25)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_CLIENT_IP_CALLABLE = "infrastructure.client_address.client_address"
AXES_RESET_ON_SUCCESS = True
AXES_VERBOSE = False

# Scripts only from our own static files: no inline script, no eval
# (infrastructure/content_security_policy.py).
CONTENT_SECURITY_POLICY = {
    "default-src": ["'self'"],
    "script-src": ["'self'"],
    "style-src": ["'self'", "'unsafe-inline'"],
    "img-src": ["'self'", "data:"],
    "connect-src": ["'self'"],
    "object-src": ["'none'"],
    "base-uri": ["'self'"],
    "form-action": ["'self'"],
    "frame-ancestors": ["'none'"],
}

LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = env.path("STATIC_ROOT", default=RUNTIME_DIR / "staticfiles")

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "rest_framework.authentication.TokenAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # DRF's three, the JSON one refusing absurd nesting with a 400 (not a RecursionError's 500).
    "DEFAULT_PARSER_CLASSES": [
        "infrastructure.json_bodies.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "infrastructure.api_errors.exception_handler",
    "NUM_PROXIES": NUM_PROXIES,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Rapport API",
    "DESCRIPTION": "Telephony webhook, routing and customer context for the loyalty team.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI from drf-spectacular-sidecar's static files: the docs page works offline and
    # under the same script policy as every other page.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Several serializers have a `status` field with different choices; name them apart.
    "ENUM_NAME_OVERRIDES": {
        "AgentStatusEnum": "routing.states.AgentStatus",
        "TelephonyAcceptedStatusEnum": ["accepted"],
        # The readiness probe's answer for PostgreSQL and for Redis (rapport/health.py).
        "ServiceReachableEnum": ["ok", "unreachable"],
    },
}

# Telephony integration (docs/telephony.md).
TELEPHONY_WEBHOOK_SECRET = env.list("TELEPHONY_WEBHOOK_SECRET", default=[])
TELEPHONY_CONTROL_URL = env.str("TELEPHONY_CONTROL_URL", default="")
# Correctly signed webhook requests per signing secret ("N/s", "N/min"; empty turns the limit
# off): telephony.signed_events.rate_limit.
TELEPHONY_RATE_LIMIT = env.str("TELEPHONY_RATE_LIMIT", default="200/s")
TELEPHONY_DEFAULT_QUEUE = env.str("TELEPHONY_DEFAULT_QUEUE", default="loyalty")
PHONE_DEFAULT_REGION = env.str("PHONE_DEFAULT_REGION", default="US")
TELEPHONY_CONNECT_RETRY_SECONDS = env.float("TELEPHONY_CONNECT_RETRY_SECONDS", default=1.0)
TELEPHONY_CONNECT_RETRY_MAX_SECONDS = env.float("TELEPHONY_CONNECT_RETRY_MAX_SECONDS", default=60.0)
TELEPHONY_CONNECT_TIMEOUT_SECONDS = env.float("TELEPHONY_CONNECT_TIMEOUT_SECONDS", default=5.0)
# Generic CTI (PBXs that route their own calls): the secret path segment of
# /api/telephony/cti/<token>/. Empty turns the endpoint off (404); a weak one stops the server
# from starting (telephony.generic_cti.token).
TELEPHONY_CTI_TOKEN = env.str("TELEPHONY_CTI_TOKEN", default="")
# Wrong tokens one client address may send ("N/s", "N/m", "N/h") before it is answered 429.
TELEPHONY_CTI_GUESS_LIMIT = env.str("TELEPHONY_CTI_GUESS_LIMIT", default="10/m")
# The console's softphone at Rapport's own Kamailio (deploy/kamailio/, telephony.sip.credentials):
# the secret Kamailio's auth_ephemeral shares with Rapport, the WebSocket the browser registers
# over (wss://<host>/sip behind nginx) and the SIP domain agents register in. Any empty: no
# softphone (GET /api/softphone/ answers 404). A weak secret stops the server from starting.
SOFTPHONE_SHARED_SECRET = env.str("SOFTPHONE_SHARED_SECRET", default="")
SOFTPHONE_WEBSOCKET_URL = env.str("SOFTPHONE_WEBSOCKET_URL", default="")
SOFTPHONE_SIP_DOMAIN = env.str("SOFTPHONE_SIP_DOMAIN", default="")

# --- Not-ready reasons ------------------------------------------------------------------------
# What an agent on `break` may say they are doing, e.g. NOT_READY_REASONS=break,lunch,coaching.
# Codes, shown capitalised with underscores as spaces ("missed_call" -> "Missed call"). The first
# is the reason of a break chosen without one. `missed_call` is what the router sets when an offer
# rings out unanswered; it is always known, listed or not, and never chosen by a person.
NOT_READY_REASONS = env.list(
    "NOT_READY_REASONS", default=["break", "lunch", "coaching", "training", "missed_call"]
)
# --- end of not-ready reasons ----------------------------------------------------------------

# LOG_FORMAT=json: one JSON object a line, for a machine to read (docs/monitoring.md). Every
# line has `call_id` and `agent_id` fields, null where a line is about no call or agent.
LOG_FORMAT = env.str("LOG_FORMAT", default="plain")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
        "json": {
            "()": "infrastructure.json_logs.JsonLinesFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
            "defaults": {"call_id": None, "agent_id": None},
        },
    },
    # Card numbers never reach the logs: the filter masks them in every record a handler writes;
    # nor does the Generic CTI token, which is in its endpoint's URL.
    "filters": {
        "card_numbers": {"()": "customers.card_numbers.CardNumberFilter"},
        "cti_token": {"()": "telephony.generic_cti.token.TokenFilter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json" if LOG_FORMAT == "json" else "plain",
            "filters": ["card_numbers", "cti_token"],
        }
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # At INFO, Celery would log every task received and done and beat every sweep it sends
        # (one line a second); Rapport logs each call event and routing decision itself.
        "celery.app.trace": {"level": "WARNING"},
        "celery.worker.strategy": {"level": "WARNING"},
        "celery.beat": {"level": "WARNING"},
        # "<worker> ready.": what `up`'s reader and the test harness wait for, whatever LOG_LEVEL.
        "celery.apps.worker": {"level": "INFO"},
        # One line per login and per HTTP request made: the push task logs what went wrong.
        "axes": {"level": "WARNING"},
        "httpx": {"level": "WARNING"},
    },
}
# Workers and beat log through this configuration too (rapport/celery.py).

# HTTPS unless INSECURE_HTTP: each of these can still be set on its own.
SESSION_COOKIE_SECURE = env.bool("SECURE_COOKIES", default=not INSECURE_HTTP)
CSRF_COOKIE_SECURE = env.bool("SECURE_COOKIES", default=not INSECURE_HTTP)
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not INSECURE_HTTP)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if INSECURE_HTTP else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=True)
# Behind a proxy that ends TLS every request arrives as plain HTTP: the proxy's
# X-Forwarded-Proto says what the client used, or the redirect would never end. Without a
# proxy nobody may claim it.
SECURE_PROXY_SSL_HEADER = (
    tuple(
        env.list(
            "SECURE_PROXY_SSL_HEADER",
            default=["HTTP_X_FORWARDED_PROTO", "https"] if NUM_PROXIES else [],
        )
    )
    or None
)
# A load balancer's probes and the monitoring's scraper speak plain HTTP on an internal address.
SECURE_REDIRECT_EXEMPT = [r"^api/health/$", r"^api/health/(live|ready)/$", r"^metrics$"]

# --- Monitoring (docs/monitoring.md) ---------------------------------------------------------
# `GET /metrics` answers only a request carrying `Authorization: Bearer <METRICS_TOKEN>`; unset,
# it answers 404. At least 24 random characters, or the server refuses to start.
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")

# --- Twilio Programmable Voice ---------------------------------------------------------------
# docs/telephony.md "Twilio". Without an account SID the Twilio
# endpoints answer 404.
TWILIO_ACCOUNT_SID = env.str("TWILIO_ACCOUNT_SID", default="")
TWILIO_AUTH_TOKEN = env.str("TWILIO_AUTH_TOKEN", default="")
TWILIO_API_BASE_URL = env.str("TWILIO_API_BASE_URL", default="https://api.twilio.com")
# The scheme and host Twilio reaches Rapport at (`https://rapport.example.com`): the URL Twilio
# signed is this plus the request's path, whatever a proxy in front rewrote. Empty: the URL the
# request arrived at, as Django sees it.
TWILIO_PUBLIC_BASE_URL = env.str("TWILIO_PUBLIC_BASE_URL", default="")
TWILIO_API_TIMEOUT_SECONDS = env.float("TWILIO_API_TIMEOUT_SECONDS", default=5.0)
TWILIO_AGENT_RING_SECONDS = env.int("TWILIO_AGENT_RING_SECONDS", default=20)
TWILIO_WAIT_SECONDS = env.int("TWILIO_WAIT_SECONDS", default=5)
TWILIO_HOLD_MUSIC_URL = env.str("TWILIO_HOLD_MUSIC_URL", default="")
