"""The telephony system's side of the API: signed events in, call state and agent to connect out."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any

from django.utils.dateparse import parse_datetime
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema, inline_serializer
from rest_framework import exceptions, serializers, status
from rest_framework.authentication import TokenAuthentication
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from customers.card_numbers import mask_card_numbers_in
from telephony import rate_limit
from telephony.models import CallEvent, CallEventType
from telephony.selectors import call_instruction
from telephony.services import END_REASONS, TelephonyEvent, accept_event
from telephony.signing import (
    SIGNATURE_HEADERS,
    SignatureRejected,
    VerifiedRequest,
    is_first_use,
    signed_request_content,
    verify_signature,
)

MAX_BODY_BYTES = 64 * 1024
MAX_WEBHOOK_ID_CHARS = 255
# Containers within one field's value (metadata nested in metadata ...): far beyond any real
# telephony payload, and far below where parsing, masking or storing would recurse too deep.
MAX_FIELD_NESTING = 32

REQUIRED_BY_TYPE = {
    CallEventType.RINGING: ("from", "to"),
    CallEventType.ANSWERED: ("agent",),
    CallEventType.TRANSFERRED: ("agent",),
}


class Rfc3339DateTimeField(serializers.DateTimeField):
    """An RFC 3339 timestamp: a date, a time and an offset (`Z` or `+02:00`)."""

    def to_internal_value(self, value):
        if not isinstance(value, str):
            raise serializers.ValidationError("Expected an RFC 3339 timestamp string.")
        try:
            parsed = parse_datetime(value.strip())
        except ValueError:
            parsed = None
        if parsed is not None and parsed.tzinfo is None:
            raise serializers.ValidationError(
                "Give the offset (Z or +hh:mm): RFC 3339 timestamps are never local time."
            )
        return super().to_internal_value(value)


class EventSerializer(serializers.Serializer):
    """A telephony format's event: a `from_` field named `from` on the wire, and fields that
    only some kinds of event require (`required_by_kind`, keyed by the `kind_field`'s value).
    Every bad field is named at once, those required by the event's kind included."""

    kind_field = "type"
    required_by_kind: dict[str, tuple[str, ...]] = {}

    def get_fields(self):
        fields = super().get_fields()
        fields["from"] = fields.pop("from_")
        return fields

    def to_internal_value(self, data):
        errors: dict[str, Any] = {}
        value = None
        try:
            value = super().to_internal_value(data)
        except exceptions.ValidationError as invalid:
            errors = dict(invalid.detail)
        kind = data.get(self.kind_field) if isinstance(data, Mapping) else None
        for name in self.required_by_kind.get(kind, ()) if isinstance(kind, str) else ():
            given = data.get(name)
            if name not in errors and (given is None or not str(given).strip()):
                errors[name] = [f"This field is required on {kind} events."]
        if errors:
            raise exceptions.ValidationError(errors)
        return value


class TelephonyEventSerializer(EventSerializer):
    """One call event, as the contract in telephony-events.md defines it. Extra fields are kept."""

    required_by_kind = REQUIRED_BY_TYPE

    type = serializers.ChoiceField(choices=CallEventType.values)
    call_id = serializers.CharField(max_length=128)
    occurred_at = Rfc3339DateTimeField()
    from_ = serializers.CharField(
        max_length=64, required=False, allow_blank=True, help_text="Caller (required on ringing)."
    )
    to = serializers.CharField(
        max_length=64, required=False, allow_blank=True, help_text="Dialled number (ringing)."
    )
    queue = serializers.CharField(
        max_length=50, required=False, allow_blank=True, help_text="Queue slug, overrides `to`."
    )
    agent = serializers.CharField(
        max_length=64,
        required=False,
        allow_blank=True,
        help_text="Agent's telephony identity (required on answered and transferred).",
    )
    reason = serializers.ChoiceField(choices=END_REASONS, required=False, allow_blank=True)
    metadata = serializers.DictField(required=False, help_text="Opaque, kept with the event.")


# Validation keeps no state in the serializer, so one instance (its fields built once) serves
# every request instead of deep-copying the declared fields per event.
EVENT_VALIDATOR = TelephonyEventSerializer()


class EventReceiptSerializer(serializers.Serializer):
    """The event is recorded (durably); a worker applies it to its call within milliseconds.
    Where the call stands: `GET /api/telephony/calls/<call_id>/`."""

    status = serializers.ChoiceField(choices=["accepted"])
    duplicate = serializers.BooleanField(help_text="True when this webhook-id was already known.")


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


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = f"The body is larger than {MAX_BODY_BYTES} bytes."


class NotJson(exceptions.UnsupportedMediaType):
    def __init__(self) -> None:
        super().__init__("", "Send the event as Content-Type: application/json (UTF-8).")


class WebhookIdReused(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "This webhook-id was already used for a different event."

    def __init__(self) -> None:
        super().__init__()
        # The API's error shape (rapport.api_errors): the field named, beside the detail.
        self.detail = {
            "detail": self.default_detail,
            "errors": {"webhook-id": ["already used for a different event"]},
        }


def verified_event_request(
    *, body: bytes, content_type: str, headers: Mapping[str, str]
) -> VerifiedRequest:
    """An event's media type and signature checked: what the webhook checks before it spends
    the signer's rate (`rate_limit`) and reads the body. Raises the API's answer (415, 401)."""
    if not _is_json(content_type):
        raise NotJson()
    return _verified(body=body, headers=headers)


def validated_event(verified: VerifiedRequest, body: bytes) -> TelephonyEvent:
    """The signed body as one valid event (the contract's fields: telephony-events.md), or the
    API's 400 naming every bad field."""
    webhook_id = verified.webhook_id
    if len(webhook_id) > MAX_WEBHOOK_ID_CHARS or "\x00" in webhook_id:
        raise exceptions.ValidationError(
            {"webhook-id": [f"Use at most {MAX_WEBHOOK_ID_CHARS} characters, no NUL."]}
        )
    payload = _parse_json_object(body)
    fields = EVENT_VALIDATOR.run_validation(payload)
    return TelephonyEvent(
        type=fields["type"],
        call_id=fields["call_id"],
        occurred_at=fields["occurred_at"],
        from_number=fields.get("from", ""),
        to_number=fields.get("to", ""),
        queue_slug=fields.get("queue", ""),
        agent_identity=fields.get("agent", ""),
        reason=fields.get("reason", ""),
        payload=payload,
    )


class TelephonyEventsView(APIView):
    """`POST /api/telephony/events/`: the signature is the authentication (no session, no CSRF)."""

    authentication_classes: list = []
    permission_classes: list = []
    # Throttled after the signature is verified (post), per signer: see telephony.rate_limit.
    throttle_classes: list = []
    renderer_classes = [JSONRenderer]
    metadata_class = None

    @extend_schema(
        operation_id="telephony_event_create",
        summary="Receive one signed telephony call event",
        description=(
            "Standard Webhooks signature over `{webhook-id}.{webhook-timestamp}.{raw body}`. "
            "Idempotent on `webhook-id` (the same id with a different body is a 409); events "
            "may arrive in any order. Throttled per signing secret, after the signature is "
            "verified. The event is durable "
            "before `202` is sent. Unknown extra fields are accepted and kept."
        ),
        parameters=SIGNATURE_PARAMETERS,
        request=TelephonyEventSerializer,
        responses={
            202: EventReceiptSerializer,
            400: FIELD_ERRORS,
            401: ERROR_DETAIL,
            409: FIELD_ERRORS,
            413: ERROR_DETAIL,
            415: ERROR_DETAIL,
            429: ERROR_DETAIL,
        },
        examples=[
            OpenApiExample(
                "A call rings",
                request_only=True,
                value={
                    "type": "call.ringing",
                    "call_id": "CA42",
                    "occurred_at": "2026-11-23T17:00:00Z",
                    "from": "+14155550123",
                    "to": "+18005550100",
                },
            )
        ],
    )
    def post(self, request: Request) -> Response:
        body = _read_limited_body(request)
        verified = verified_event_request(
            body=body, content_type=request.content_type, headers=request.headers
        )
        wait = rate_limit.seconds_to_wait(signer=verified.signer)
        if wait is not None:
            self.throttled(request, wait)
        event = validated_event(verified, body)
        receipt = accept_event(webhook_id=verified.webhook_id, event=event)
        if receipt.duplicate and not _is_stored_as(
            webhook_id=verified.webhook_id, payload=event.payload
        ):
            raise WebhookIdReused()
        return Response(
            {"status": "accepted", "duplicate": receipt.duplicate}, status=status.HTTP_202_ACCEPTED
        )

    def get_authenticate_header(self, request: Request) -> str:
        # Makes DRF answer 401 (not 403) for a refused signature.
        return 'Signature realm="telephony"'


class CallInstructionSerializer(serializers.Serializer):
    call_id = serializers.CharField()
    state = serializers.CharField()
    queue = serializers.CharField(allow_null=True)
    agent = serializers.CharField(
        allow_null=True, help_text="Telephony identity of the agent to connect, once decided."
    )
    decision_id = serializers.IntegerField(allow_null=True)


class TelephonyCallView(APIView):
    """`GET /api/telephony/calls/<call_id>/`: for telephony systems that pull their instruction.

    Signed like an event, over its method and path in the body's place
    (`{id}.{timestamp}.GET /api/telephony/calls/CA42/`), each webhook-id once; or with an API
    token of a user allowed to view calls.
    """

    authentication_classes = [TokenAuthentication]
    permission_classes: list = []
    renderer_classes = [JSONRenderer]
    metadata_class = None

    @extend_schema(
        operation_id="telephony_call_retrieve",
        summary="The call's state and, once decided, the agent to connect",
        description=(
            "Signed like an event with `GET {path}` in the body's place "
            "(`{webhook-id}.{webhook-timestamp}.GET /api/telephony/calls/CA42/`), a new "
            "`webhook-id` for every request; or an API token."
        ),
        parameters=SIGNATURE_PARAMETERS,
        responses={200: CallInstructionSerializer, 401: ERROR_DETAIL, 404: ERROR_DETAIL},
    )
    def get(self, request: Request, call_id: str) -> Response:
        authorise_pull(request)
        # No stored call_id is longer than 128 characters or holds a NUL.
        valid = len(call_id) <= 128 and "\x00" not in call_id
        instruction = call_instruction(telephony_call_id=call_id) if valid else None
        if instruction is None:
            raise exceptions.NotFound("No call with this call_id.")
        return Response(instruction)

    def get_authenticate_header(self, request: Request) -> str:
        return 'Signature realm="telephony", Token'


def authorise_pull(request: Request) -> None:
    """A request the telephony system makes without a body (a pull, a route hint): signed over
    its method and path, each webhook-id once, or an API token of a user allowed to view calls."""
    if any(request.headers.get(name) for name in SIGNATURE_HEADERS):
        content = signed_request_content(method=request.method, path=request.path)
        verified = _verified(body=content.encode(), headers=request.headers)
        if not is_first_use(verified.webhook_id):
            raise exceptions.AuthenticationFailed(
                "This webhook-id was already used: sign every request afresh."
            )
    elif not (request.user.is_authenticated and request.user.has_perm("routing.view_call")):
        raise exceptions.NotAuthenticated(
            "Sign the request or send the API token of a user allowed to view calls."
        )


def _verified(*, body: bytes, headers: Mapping[str, str]) -> VerifiedRequest:
    try:
        return verify_signature(body=body, headers=headers)
    except SignatureRejected as rejected:
        raise exceptions.AuthenticationFailed(str(rejected)) from rejected


def _is_stored_as(*, webhook_id: str, payload: dict[str, Any]) -> bool:
    """Whether the event stored under `webhook_id` is this payload (a redelivery), compared as
    stored: masked."""
    stored = (
        CallEvent.objects.filter(webhook_id=webhook_id).values_list("payload", flat=True).first()
    )
    return stored == mask_card_numbers_in(payload)


def _read_limited_body(request: Request) -> bytes:
    declared = request.META.get("CONTENT_LENGTH") or "0"
    try:
        declared_length = int(declared)
    except ValueError:
        declared_length = 0
    if declared_length > MAX_BODY_BYTES:
        raise PayloadTooLarge()
    body = request._request.read(MAX_BODY_BYTES + 1)
    if len(body) > MAX_BODY_BYTES:
        raise PayloadTooLarge()
    return body


def _is_json(content_type: str) -> bool:
    media_type, _, parameters = (content_type or "").partition(";")
    if media_type.strip().lower() != "application/json":
        return False
    charset = next(
        (
            value.strip().strip('"').lower()
            for name, _, value in (part.partition("=") for part in parameters.split(";"))
            if name.strip().lower() == "charset"
        ),
        "utf-8",
    )
    return charset in ("utf-8", "utf8")


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(f"{text[:20]} is too large a number")
    return number


def _parse_json_object(body: bytes) -> dict[str, Any]:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as malformed:
        raise exceptions.ValidationError({"body": ["Not valid UTF-8."]}) from malformed
    too_deep = _field_nested_too_deep(text)
    if too_deep is not None:
        raise exceptions.ValidationError(
            {too_deep: [f"Nested more than {MAX_FIELD_NESTING} levels deep."]}
        )
    try:
        payload = json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float)
    except ValueError as malformed:
        raise exceptions.ValidationError(
            {"body": [f"Not valid JSON: {str(malformed)[:120]}"]}
        ) from malformed
    if not isinstance(payload, dict):
        raise exceptions.ValidationError({"body": ["Expected one JSON object."]})
    check_storable(payload)
    return payload


def check_storable(payload: dict[str, Any]) -> None:
    """A 400 naming every field whose text PostgreSQL could not keep."""
    unstorable = sorted(key for key, value in payload.items() if not _storable(key, value))
    if unstorable:
        raise exceptions.ValidationError(
            {
                _printable(key)[:64]: ["Text must be valid Unicode without NUL characters."]
                for key in unstorable
            }
        )


_JSON_STRING_OR_BRACKET = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]')


def _field_nested_too_deep(text: str) -> str | None:
    """The top-level field whose value nests deeper than MAX_FIELD_NESTING ("body" when the
    body itself does), read from the raw text: the parser never sees such a body, so no depth
    can make it recurse. Strings are skipped whole, so brackets inside them do not count."""
    if text.count("[") + text.count("{") <= MAX_FIELD_NESTING:
        return None
    depth = 0
    last_top_level_string = ""
    for token in _JSON_STRING_OR_BRACKET.finditer(text):
        piece = token.group()
        if piece[0] == '"':
            # In an object, the last string before a value opens is that value's key.
            if depth == 1:
                last_top_level_string = piece
        elif piece in "[{":
            depth += 1
            if depth > MAX_FIELD_NESTING + 1:
                return _field_name(last_top_level_string)
        else:
            depth -= 1
    return None


def _field_name(json_string: str) -> str:
    try:
        name = json.loads(json_string) if json_string else ""
    except ValueError:
        name = ""
    return _printable(name)[:64] or "body"


def _storable(key: str, value: Any) -> bool:
    """PostgreSQL cannot keep NUL characters or lone surrogates in text or jsonb."""
    pending = [key, value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if "\x00" in item or not item.isascii() and not _encodes(item):
                return False
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return True


def _printable(text: str) -> str:
    return text.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\x00")


def _encodes(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
