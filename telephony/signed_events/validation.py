"""The own signed event format's checks (docs/telephony.md, "Events"), in the order the webhook
runs them: the media type and the Standard Webhooks signature (`verified_event_request`,
before the signer's rate is spent), then the body and every field (`validated_event`). Each
refusal is the API's own answer (400 naming every field, 401, 409, 413, 415), whichever way the
request came in (`intake`, `api`)."""

from __future__ import annotations

from collections.abc import Mapping

from django.utils import timezone
from django.utils.dateparse import parse_datetime
from rest_framework import exceptions, serializers, status

from telephony.authentication import verified_signature
from telephony.events import END_REASONS, MAX_AHEAD_OF_CLOCK, TelephonyEvent
from telephony.models import CallEventType
from telephony.payloads import EventSerializer, parse_json_object
from telephony.signing import VerifiedRequest

MAX_BODY_BYTES = 64 * 1024
MAX_WEBHOOK_ID_CHARS = 255

# The 202's body: the event is recorded (or was already); a worker applies it.
RECORDED_ANSWER = {"status": "accepted", "duplicate": False}
DUPLICATE_ANSWER = {"status": "accepted", "duplicate": True}

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

    def validate_occurred_at(self, value):
        """Refused when far in the future (docs/telephony.md, "Late and far-future events"):
        the sender's clock is wrong, and stored, the event would freeze its call."""
        ahead = value - timezone.now()
        if ahead > MAX_AHEAD_OF_CLOCK:
            minutes = int(MAX_AHEAD_OF_CLOCK.total_seconds() // 60)
            raise serializers.ValidationError(
                f"{value.isoformat()} is {_how_long(ahead)} ahead of Rapport's clock (at most"
                f" {minutes} minutes are accepted): check the sending system's clock."
            )
        return value


# Validation keeps no state in the serializer, so one instance (its fields built once) serves
# every request instead of deep-copying the declared fields per event.
EVENT_VALIDATOR = TelephonyEventSerializer()


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
        # The API's error shape (infrastructure.api_errors): the field named, beside the detail.
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
    return verified_signature(body=body, headers=headers)


def validated_event(verified: VerifiedRequest, body: bytes) -> TelephonyEvent:
    """The signed body as one valid event (the contract's fields: docs/telephony.md), or the
    API's 400 naming every bad field."""
    webhook_id = verified.webhook_id
    if len(webhook_id) > MAX_WEBHOOK_ID_CHARS or "\x00" in webhook_id:
        raise exceptions.ValidationError(
            {"webhook-id": [f"Use at most {MAX_WEBHOOK_ID_CHARS} characters, no NUL."]}
        )
    payload = parse_json_object(body)
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


def _how_long(ahead) -> str:
    seconds = int(ahead.total_seconds())
    if seconds >= 2 * 86400:
        return f"{seconds // 86400} days"
    if seconds >= 2 * 3600:
        return f"{seconds // 3600} hours"
    return f"{seconds // 60} minutes"


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
