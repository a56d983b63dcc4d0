"""Whether this process can serve: `health` (the database answers, the API contract's),
`live` (the process is up: for systemd and a load balancer to restart a hung one; touches
nothing) and `ready` (PostgreSQL and Redis answer: a load balancer sends it no traffic until
they do). Each check of `ready` gives up after READINESS_TIMEOUT_SECONDS, and both run at once,
so a probe is answered within that time whatever is out of reach."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import psycopg
import redis
from django.conf import settings
from django.db import connection
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.decorators import api_view, authentication_classes, permission_classes
from rest_framework.request import Request
from rest_framework.response import Response

READINESS_TIMEOUT_SECONDS = 2
OK = "ok"
UNREACHABLE = "unreachable"


@extend_schema(
    summary="Liveness and database check",
    responses=inline_serializer("Health", {"status": serializers.CharField()}),
)
@api_view(["GET"])
@authentication_classes([])
@permission_classes([])
def health(request: Request) -> Response:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return Response({"status": "ok"})


@extend_schema(
    summary="Liveness: the process answers (touches neither PostgreSQL nor Redis)",
    responses=inline_serializer("Liveness", {"status": serializers.CharField()}),
)
@api_view(["GET"])
@authentication_classes([])
@permission_classes([])
def live(request: Request) -> Response:
    return Response({"status": "ok"})


_Readiness = inline_serializer(
    "Readiness",
    {
        "status": serializers.ChoiceField(["ready", "not_ready"]),
        "database": serializers.ChoiceField([OK, UNREACHABLE]),
        "redis": serializers.ChoiceField([OK, UNREACHABLE]),
    },
)


@extend_schema(
    summary="Readiness: PostgreSQL and Redis both answer",
    responses={
        200: _Readiness,
        503: OpenApiResponse(_Readiness, description="One of them is out of reach (named)."),
    },
)
@api_view(["GET"])
@authentication_classes([])
@permission_classes([])
def ready(request: Request) -> Response:
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="readiness") as checks:
        database = checks.submit(_database_answers)
        broker = checks.submit(_redis_answers)
        answers = {"database": database.result(), "redis": broker.result()}
    all_ok = all(answer == OK for answer in answers.values())
    return Response(
        {"status": "ready" if all_ok else "not_ready", **answers}, status=200 if all_ok else 503
    )


def _database_answers() -> str:
    """A connection of its own, not the request thread's kept one: a kept connection to a
    server gone away would wait on TCP, and its pool would wait for a free slot."""
    params = connection.get_connection_params()
    params["connect_timeout"] = READINESS_TIMEOUT_SECONDS
    try:
        with psycopg.connect(**params) as probe:
            probe.execute("SELECT 1")
    except psycopg.Error:
        return UNREACHABLE
    return OK


def _redis_answers() -> str:
    client = redis.Redis.from_url(
        settings.REDIS_URL,
        socket_connect_timeout=READINESS_TIMEOUT_SECONDS,
        socket_timeout=READINESS_TIMEOUT_SECONDS,
    )
    try:
        client.ping()
    except (redis.RedisError, OSError):
        return UNREACHABLE
    finally:
        client.close()
    return OK
