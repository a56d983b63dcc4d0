from django.db import models
from django.db.models.functions import Now

from routing.models import Call, RoutingDecision


class CallEventType(models.TextChoices):
    RINGING = "call.ringing"
    ANSWERED = "call.answered"
    HELD = "call.held"
    RESUMED = "call.resumed"
    TRANSFERRED = "call.transferred"
    ENDED = "call.ended"
    # The caller asked to be called back: the call ends as such, not abandoned (routing.callbacks).
    CALLBACK_REQUESTED = "call.callback_requested"


class CallEvent(models.Model):
    """Every accepted telephony event, exactly once per webhook id."""

    webhook_id = models.CharField(max_length=255, unique=True)
    call = models.ForeignKey(Call, on_delete=models.CASCADE, related_name="events")
    type = models.CharField(max_length=32, choices=CallEventType.choices)
    occurred_at = models.DateTimeField()
    received_at = models.DateTimeField(db_default=Now())
    payload = models.JSONField(default=dict)
    applied = models.BooleanField(default=True)
    outcome = models.CharField(max_length=200, blank=True, help_text="Why it was not applied.")
    # Set while the event is recorded but not yet applied (the webhook's intake records, a
    # worker applies): the validated fields the call needs, as received. The payload cannot
    # serve, as it is stored masked and a 13-digit phone number can look like a card number.
    fields_to_apply = models.JSONField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["occurred_at", "id"]
        indexes = [
            models.Index(
                fields=["received_at"],
                name="callevent_not_yet_applied",
                condition=models.Q(fields_to_apply__isnull=False),
            )
        ]


class ConnectAttempt(models.Model):
    """One push of an instruction to the telephony system (`call.connect`, or one the console
    asked for: `call.transfer`, `call.hangup`, `call.hold`, `call.resume`), or one REST update
    of a Twilio call."""

    call = models.ForeignKey(Call, on_delete=models.CASCADE, related_name="connect_attempts")
    decision = models.ForeignKey(
        RoutingDecision, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    instruction = models.CharField(max_length=16, default="call.connect")
    attempt = models.PositiveSmallIntegerField()
    sent_at = models.DateTimeField(db_default=Now())
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["sent_at", "id"]


class TwilioDialPath(models.TextChoices):
    REST_UPDATE = "rest_update", "REST update of the live call"
    ENQUEUE_ACTION = "enqueue_action", "Enqueue action after <Leave/>"
    PLACED = "placed", "A call back, placed with Calls.create"


class TwilioCall(models.Model):
    """A call that came in through Twilio (telephony.twilio.calls): the account it belongs
    to, where Twilio reaches Rapport, and which accepted decision the caller is being dialled
    to, so that the REST update and the wait loop's fallback never both dial one agent."""

    call = models.OneToOneField(Call, primary_key=True, on_delete=models.CASCADE, related_name="+")
    account_sid = models.CharField(max_length=34)
    public_base_url = models.CharField(
        max_length=200, help_text="Scheme and host Twilio used to reach Rapport for this call."
    )
    dialled_decision = models.ForeignKey(
        RoutingDecision, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    dialled_via = models.CharField(max_length=16, choices=TwilioDialPath.choices, blank=True)
    dialled_at = models.DateTimeField(null=True, blank=True)


class RecordingDeletion(models.Model):
    """A recording of an erased customer still to delete at Twilio: only its ids, nothing about
    the customer, kept until Twilio answers 2xx or 404 (telephony.voicemails)."""

    account_sid = models.CharField(max_length=64)
    recording_sid = models.CharField(max_length=64, unique=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(db_default=Now())


class PlacedCall(models.Model):
    """A call back's try as the phone system placed it, under a call id of its own choosing
    (`metadata.callback_id` named the call back): its events are the try's
    (telephony.placed_calls)."""

    call = models.OneToOneField(Call, on_delete=models.CASCADE, related_name="placed_as")
    placed_call_id = models.CharField(max_length=128, unique=True)
    created_at = models.DateTimeField(db_default=Now())
