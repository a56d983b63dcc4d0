"""One error shape for the whole API: `{"errors": {field: [messages]}}` plus a `detail` line.

A refused routing action is answered here, by its kind, for every endpoint alike: `invalid` is
400, `conflict` (not now) is 409, `not_found` is 404. A backing service out of reach is 503.
"""

import logging

import redis.exceptions
from django import db
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler
from rest_framework.views import set_rollback

from routing.services import RoutingRefused

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

REFUSAL_STATUS = {
    "invalid": status.HTTP_400_BAD_REQUEST,
    "conflict": status.HTTP_409_CONFLICT,
    "not_found": status.HTTP_404_NOT_FOUND,
}


def exception_handler(exc, context):
    if isinstance(exc, RoutingRefused):
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


def _refused(refusal: RoutingRefused) -> Response:
    if refusal.kind == "not_found":
        return Response({"detail": refusal.message}, status=status.HTTP_404_NOT_FOUND)
    return Response(
        {
            "detail": refusal.message,
            "errors": {refusal.field or "non_field_errors": [refusal.message]},
        },
        status=REFUSAL_STATUS[refusal.kind],
    )
