"""`GET /api/softphone/`: the logged-in agent's own softphone credentials."""

from __future__ import annotations

from django.utils import timezone
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import exceptions, serializers
from rest_framework.decorators import api_view
from rest_framework.request import Request
from rest_framework.response import Response

from routing.selectors import agent_for_user
from telephony.openapi import ERROR_DETAIL
from telephony.sip.credentials import softphone_configured, softphone_credentials


@extend_schema(
    summary="My softphone's SIP credentials (WebSocket URL, SIP URI, ephemeral password)",
    description=(
        "For the console's softphone: register at `websocket_url` as `uri` with `username` and "
        "`password` until `expires` (unix time). 404 when no softphone is configured "
        "(SOFTPHONE_SHARED_SECRET, SOFTPHONE_WEBSOCKET_URL, SOFTPHONE_SIP_DOMAIN); 403 for "
        "anyone who does not take calls."
    ),
    responses={
        200: inline_serializer(
            "SoftphoneCredentials",
            {
                "websocket_url": serializers.CharField(),
                "uri": serializers.CharField(),
                "username": serializers.CharField(),
                "password": serializers.CharField(),
                "expires": serializers.IntegerField(),
            },
        ),
        403: ERROR_DETAIL,
        404: ERROR_DETAIL,
    },
)
@api_view(["GET"])
def softphone(request: Request) -> Response:
    if not softphone_configured():
        raise exceptions.NotFound("No softphone is configured here.")
    agent = agent_for_user(request.user, fields=("id", "telephony_identity"))
    if agent is None:
        raise exceptions.PermissionDenied("Only agents have a softphone.")
    response = Response(softphone_credentials(agent, now=timezone.now()))
    response["Cache-Control"] = "no-store"
    return response
