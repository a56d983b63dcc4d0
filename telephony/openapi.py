"""Pieces of the OpenAPI schema the telephony endpoints share: their error bodies and the
Standard Webhooks signature headers."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, inline_serializer
from rest_framework import serializers

ERROR_DETAIL = inline_serializer("TelephonyErrorDetail", {"detail": serializers.CharField()})
FIELD_ERRORS = inline_serializer(
    "TelephonyFieldErrors",
    {
        "detail": serializers.CharField(),
        "errors": serializers.DictField(child=serializers.ListField(child=serializers.CharField())),
    },
)
SIGNATURE_PARAMETERS = [
    OpenApiParameter(
        "webhook-id",
        OpenApiTypes.STR,
        OpenApiParameter.HEADER,
        description="Unique per event; the idempotency key (at most 255 characters).",
    ),
    OpenApiParameter(
        "webhook-timestamp",
        OpenApiTypes.STR,
        OpenApiParameter.HEADER,
        description="Unix seconds; refused when more than 5 minutes from the server clock.",
    ),
    OpenApiParameter(
        "webhook-signature",
        OpenApiTypes.STR,
        OpenApiParameter.HEADER,
        description="Space-separated `v1,<base64 HMAC-SHA256>` of `{id}.{timestamp}.{body}`.",
    ),
]
