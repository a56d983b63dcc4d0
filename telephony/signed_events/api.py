"""The own signed event format's endpoints (docs/telephony.md): `POST /api/telephony/events/`
(recorded, then applied by a worker) and the pull, `GET /api/telephony/calls/<call_id>/`."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import exceptions, serializers, status
from rest_framework.authentication import TokenAuthentication
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from infrastructure import dispatch
from telephony import applying, placed_calls, recording
from telephony.authentication import authorise_pull
from telephony.openapi import ERROR_DETAIL, FIELD_ERRORS, SIGNATURE_PARAMETERS
from telephony.selectors import call_instruction
from telephony.signed_events import rate_limit
from telephony.signed_events.validation import (
    DUPLICATE_ANSWER,
    MAX_BODY_BYTES,
    RECORDED_ANSWER,
    PayloadTooLarge,
    TelephonyEventSerializer,
    WebhookIdReused,
    validated_event,
    verified_event_request,
)


class EventReceiptSerializer(serializers.Serializer):
    """The event is recorded (durably); a worker applies it to its call within milliseconds.
    Where the call stands: `GET /api/telephony/calls/<call_id>/`."""

    status = serializers.ChoiceField(choices=["accepted"])
    duplicate = serializers.BooleanField(help_text="True when this webhook-id was already known.")


class TelephonyEventsView(APIView):
    """`POST /api/telephony/events/` for every way in but the ASGI server's (which answers it on
    its event loop: `intake`): the same checks, the same statement records the event, and a
    worker applies it. The signature is the authentication (no session, no CSRF)."""

    authentication_classes: list = []
    permission_classes: list = []
    # Throttled after the signature is verified (post), per signer: see `rate_limit`.
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
        event = placed_calls.as_placed_try(validated_event(verified, body))
        event_id = recording.record_event(webhook_id=verified.webhook_id, event=event)
        if event_id is None:
            if not recording.is_stored_as(webhook_id=verified.webhook_id, event=event):
                raise WebhookIdReused()
            return Response(DUPLICATE_ANSWER, status=status.HTTP_202_ACCEPTED)
        dispatch.publish_on_commit(applying.APPLY_RECORDED_EVENT, event_id)
        return Response(RECORDED_ANSWER, status=status.HTTP_202_ACCEPTED)

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
