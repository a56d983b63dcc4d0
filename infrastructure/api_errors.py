"""One error shape for the whole API: `{"errors": {field: [messages]}}` plus a `detail` line.

A refused action (`infrastructure.errors.Refused`) is answered with the status it carries, for
every endpoint alike; a backing service out of reach is 503.
"""

import logging

import redis.exceptions
from django import db
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler
from rest_framework.views import set_rollback

from infrastructure.errors import Forbidden, Gone, NotFound, Refused

logger = logging.getLogger(__name__)

# PostgreSQL restarting, Redis down: the same request may well succeed in a few seconds, so
# say that (a phone system retries a 503 after Retry-After) rather than answer 500.
UNREACHABLE = (
    db.OperationalError,
    db.InterfaceError,
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
)
RETRY_AFTER_SECONDS = 5


def exception_handler(exc, context):
    if isinstance(exc, Refused):
        return _refused(exc)
    if isinstance(exc, UNREACHABLE):
        logger.warning("answered 503: %s: %s", type(exc).__name__, exc)
        set_rollback()
        return Response(
            {"detail": "A service Rapport needs cannot be reached just now: try again shortly."},
            status=status.HTTP_503_SERVICE_UNAVAILABLE,
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        errors = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
        response.data = {"detail": "Some fields are invalid.", "errors": errors}
    return response


def _refused(refusal: Refused) -> Response:
    # Nothing to correct in a request for what is not there or not theirs: no field.
    if isinstance(refusal, NotFound | Forbidden | Gone):
        return Response({"detail": refusal.message}, status=refusal.http_status)
    return Response(
        {
            "detail": refusal.message,
            "errors": {refusal.field or "non_field_errors": [refusal.message]},
        },
        status=refusal.http_status,
    )
