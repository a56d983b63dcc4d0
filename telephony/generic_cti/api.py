"""The Generic CTI endpoint a PBX posts to (docs/telephony.md, "Generic CTI"). Every answer is a
JSON object: PBX clients parse them all."""

from __future__ import annotations

import hmac
from typing import Any

from django.conf import settings
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import exceptions, serializers
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from infrastructure.client_address import client_address
from infrastructure.json_bodies import JSONParser
from telephony.generic_cti import token as cti_token
from telephony.generic_cti.events import (
    CAUSE_REASONS,
    DIRECTIONS,
    EVENT_TYPES,
    CtiEvent,
    accept_cti_event,
)
from telephony.openapi import ERROR_DETAIL, FIELD_ERRORS
from telephony.payloads import EventSerializer, check_storable

REQUIRED_BY_EVENT = {"newCall": ("from", "to")}
MAX_USERS = 50


class GenericCtiSerializer(EventSerializer):
    """One Generic CTI event. Unknown fields are kept with the event."""

    kind_field = "event"
    required_by_kind = REQUIRED_BY_EVENT

    event = serializers.ChoiceField(choices=list(EVENT_TYPES))
    callId = serializers.CharField(max_length=128)  # noqa: N815 (the format's own name)
    from_ = serializers.CharField(max_length=64, required=False, allow_blank=True)
    to = serializers.CharField(max_length=64, required=False, allow_blank=True)
    direction = serializers.ChoiceField(choices=DIRECTIONS, required=False, default="in")
    user = serializers.ListField(
        child=serializers.CharField(max_length=150),
        required=False,
        max_length=MAX_USERS,
        help_text="Whose phones ring (newCall) or who answered (answer), by name; also `user[]`.",
    )
    queue = serializers.CharField(max_length=100, required=False, allow_blank=True)
    answeringNumber = serializers.CharField(  # noqa: N815
        max_length=64, required=False, allow_blank=True
    )
    cause = serializers.ChoiceField(choices=list(CAUSE_REASONS), required=False, allow_blank=True)


CTI_VALIDATOR = GenericCtiSerializer()


class GenericCtiView(APIView):
    """`POST /api/telephony/cti/<token>/`: the token in the path is the authentication."""

    authentication_classes: list = []
    permission_classes: list = []
    throttle_classes: list = []
    parser_classes = [FormParser, MultiPartParser, JSONParser]
    renderer_classes = [JSONRenderer]
    metadata_class = None

    @extend_schema(
        operation_id="telephony_generic_cti_create",
        summary="Receive one Generic CTI event (newCall, answer, hangup) from a PBX",
        description=(
            "Zammad's Generic CTI format, form-encoded or JSON. The PBX routes the call; "
            "Rapport records it and shows the caller to the agents whose phones ring and to "
            "the agent who answers. Idempotent: a repeated event changes nothing. "
            "`TELEPHONY_CTI_TOKEN` unset: 404; a wrong token: 403; more wrong tokens from one "
            "address than `TELEPHONY_CTI_GUESS_LIMIT`: 429 for every request from it, with "
            "Retry-After."
        ),
        request=GenericCtiSerializer,
        responses={
            200: inline_serializer("GenericCtiAnswer", {}),
            400: FIELD_ERRORS,
            403: ERROR_DETAIL,
            404: ERROR_DETAIL,
            415: ERROR_DETAIL,
            429: ERROR_DETAIL,
        },
    )
    def post(self, request: Request, token: str) -> Response:
        configured = settings.TELEPHONY_CTI_TOKEN
        if not configured:
            raise exceptions.NotFound("Generic CTI is not configured (TELEPHONY_CTI_TOKEN).")
        address = client_address(request)
        wait = cti_token.seconds_until_next_guess(address)
        if wait is not None:
            raise exceptions.Throttled(wait, "Too many wrong Generic CTI tokens from here.")
        if not hmac.compare_digest(token.encode(), configured.encode()):
            cti_token.count_wrong_guess(address)
            raise exceptions.PermissionDenied("Wrong Generic CTI token.")
        payload = _posted(request.data)
        check_storable(payload)
        fields = CTI_VALIDATOR.run_validation(payload)
        accept_cti_event(
            CtiEvent(
                event=fields["event"],
                call_id=fields["callId"],
                from_number=fields.get("from", ""),
                to_number=fields.get("to", ""),
                direction=fields["direction"],
                users=tuple(fields.get("user", ())),
                queue=fields.get("queue", ""),
                answering_number=fields.get("answeringNumber", ""),
                cause=fields.get("cause", ""),
                payload=payload,
            )
        )
        return Response({})


def _posted(data: Any) -> dict[str, Any]:
    """The posted fields as one plain object, `user` and `user[]` as one list of names."""
    if hasattr(data, "getlist"):
        posted: dict[str, Any] = {
            key: data.getlist(key) if key in ("user", "user[]") else data.get(key) for key in data
        }
    elif isinstance(data, dict):
        posted = dict(data)
    else:
        raise exceptions.ValidationError({"body": ["Expected form fields or one JSON object."]})
    users = posted.pop("user[]", None)
    if users is not None:
        posted["user"] = [*_as_list(posted.get("user")), *_as_list(users)]
    elif "user" in posted:
        posted["user"] = _as_list(posted["user"])
    return posted


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]
