from django.conf import settings
from django.db import models
from django.db.models import Q
from django.db.models.functions import Now


class Consent(models.TextChoices):
    CLOSED = "closed", "Closed"
    CONDITIONAL = "conditional", "Conditional"
    OPEN = "open", "Open"


class Pace(models.TextChoices):
    BRISK = "brisk", "Brisk (in a rush)"
    UNHURRIED = "unhurried", "Unhurried"
    UNKNOWN = "unknown", "Unknown"


class HoldTolerance(models.TextChoices):
    FINE = "fine", "Fine on hold"
    AVOID = "avoid", "Avoid holding"
    UNKNOWN = "unknown", "Unknown"


class Channel(models.TextChoices):
    PHONE = "phone", "Phone"
    TEXT = "text", "Text"
    EMAIL = "email", "Email"
    UNKNOWN = "unknown", "Unknown"


class Provenance(models.TextChoices):
    SAID_BY_CALLER = "caller", "Said by the caller"
    # Their answer to Rapport's question while they waited (routing.caller_choice): as good as
    # said to an agent, and told apart on the card.
    SAID_ON_KEYPAD = "keypad", "Said by the caller, on the keypad"
    INFERRED_BY_AGENT = "agent", "Inferred by an agent"
    UNKNOWN = "unknown", "Not recorded"


class SurveyTrust(models.TextChoices):
    AGREE = "agree", "Agrees we have their best interest in mind"
    NEUTRAL = "neutral", "Neutral"
    DISAGREE = "disagree", "Disagrees"
    UNKNOWN = "unknown", "Not answered"


class ReturnBehaviour(models.TextChoices):
    RARELY = "rarely", "Rarely returns"
    SOMETIMES = "sometimes", "Sometimes returns"
    OFTEN = "often", "Often returns"
    UNKNOWN = "unknown", "Unknown"


# Every preference carries where it came from, who recorded it and when: "ask, don't assume".
def _provenance_field() -> models.CharField:
    return models.CharField(max_length=16, choices=Provenance.choices, default=Provenance.UNKNOWN)


def _recorded_by_field() -> models.ForeignKey:
    return models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )


def _recorded_at_field() -> models.DateTimeField:
    return models.DateTimeField(null=True, blank=True)


class Customer(models.Model):
    name = models.CharField(max_length=200)
    email = models.EmailField(blank=True)
    external_id = models.CharField(max_length=64, null=True, blank=True, unique=True)
    customer_since = models.DateField(null=True, blank=True, help_text="Tenure starts here.")
    created_at = models.DateTimeField(auto_now_add=True)
    erased_at = models.DateTimeField(null=True, blank=True)

    pace = models.CharField(max_length=16, choices=Pace.choices, default=Pace.UNKNOWN)
    pace_source = _provenance_field()
    pace_set_by = _recorded_by_field()
    pace_set_at = _recorded_at_field()

    hold_tolerance = models.CharField(
        max_length=16, choices=HoldTolerance.choices, default=HoldTolerance.UNKNOWN
    )
    hold_tolerance_source = _provenance_field()
    hold_tolerance_set_by = _recorded_by_field()
    hold_tolerance_set_at = _recorded_at_field()

    preferred_channel = models.CharField(
        max_length=16, choices=Channel.choices, default=Channel.UNKNOWN
    )
    preferred_channel_source = _provenance_field()
    preferred_channel_set_by = _recorded_by_field()
    preferred_channel_set_at = _recorded_at_field()

    # Closed until the customer says otherwise: about half want to stay anonymous.
    consent = models.CharField(max_length=16, choices=Consent.choices, default=Consent.CLOSED)
    consent_source = _provenance_field()
    consent_set_by = _recorded_by_field()
    consent_set_at = _recorded_at_field()

    survey_trust = models.CharField(
        max_length=16, choices=SurveyTrust.choices, default=SurveyTrust.UNKNOWN
    )
    survey_trust_at = models.DateTimeField(null=True, blank=True)
    return_behaviour = models.CharField(
        max_length=16, choices=ReturnBehaviour.choices, default=ReturnBehaviour.UNKNOWN
    )

    class Meta:
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.name


class PhoneNumber(models.Model):
    """One customer's number. The same number on several customers is a shared line."""

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="phones")
    number = models.CharField(max_length=32, help_text="E.164, e.g. +14155550123", db_index=True)
    label = models.CharField(max_length=32, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["customer", "number"], name="unique_number_per_customer"
            ),
        ]

    def __str__(self) -> str:
        return self.number


class CallNote(models.Model):
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="notes")
    # The call the note was written on. Customers know nothing of calls, so this is a plain id;
    # routing's migration adds the foreign key to its calls table (ON DELETE SET NULL).
    call_id = models.BigIntegerField(null=True, blank=True)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    text = models.TextField(blank=True)
    occasion = models.CharField(max_length=200, blank=True)
    intent = models.CharField(max_length=200, blank=True)
    shopping_for = models.CharField(max_length=200, blank=True)
    sizes = models.CharField(max_length=200, blank=True, help_text="Sizes that have fit before.")
    open_matter = models.BooleanField(
        default=False,
        help_text="About something still unresolved (shown even with consent closed).",
    )
    # The call's wrap-up code, as routing keeps it on the call (routing.wrap_up): the history
    # shows it beside the note without reading calls.
    wrap_up_label = models.CharField(max_length=60, blank=True)
    created_at = models.DateTimeField(db_default=Now())

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["customer", "-created_at", "-id"], name="note_customer_newest"),
            # The router asks whether the caller's last call left an open matter.
            models.Index(fields=["call_id"], name="note_call", condition=Q(call_id__isnull=False)),
        ]

    def __str__(self) -> str:
        return f"Note on {self.customer_id} at {self.created_at:%Y-%m-%d}"


class AccessReason(models.TextChoices):
    OFFER = "offer", "Offered call (screen-pop)"
    CALL = "call", "Their call with this agent"
    LOOKUP = "lookup", "Lookup outside a call (reason typed)"
    EXPORT = "export", "Data export"
    API = "api", "API, by staff"
    ADMIN = "admin", "Admin site"
    SUPERVISOR = "supervisor", "Supervising (dashboard, a call's routing story)"
    WAITING = "waiting", "Their caller waiting for them (waiting line)"
    VOICEMAIL = "voicemail", "Listened to their voicemail"


# What a typed reason reads once its customer is erased: the reason may name them.
MASKED_REASON_TEXT = "(erased)"


class AppendOnlyQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise PermissionError("the context access log is append-only")

    def mask_typed_reasons(self) -> int:
        """The one change the log allows, and only on rows about an erased customer (the
        database's trigger checks it too): their typed reasons become MASKED_REASON_TEXT."""
        typed = self.exclude(reason_text="")
        return models.QuerySet.update(typed, reason_text=MASKED_REASON_TEXT)

    def delete(self):
        raise PermissionError("the context access log is append-only")


class ContextAccess(models.Model):
    """One read of a customer's context by a person: who, when, which customer and why.

    Append-only: the application never changes or removes a row (the database refuses it too,
    see the initial migration). The foreign keys carry no database constraint and no cascade,
    and the call is a plain id, so neither erasing a customer nor removing a user or a call
    touches the log.
    """

    customer = models.ForeignKey(
        Customer,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="context_accesses",
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )
    username = models.CharField(max_length=150, help_text="Who, as they were called then.")
    reason = models.CharField(max_length=16, choices=AccessReason.choices)
    reason_text = models.CharField(max_length=300, blank=True, help_text="The typed reason.")
    call_id = models.BigIntegerField(
        null=True, blank=True, help_text="The routing Call the customer was shown on, if any."
    )
    accessed_at = models.DateTimeField(db_default=Now())

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        ordering = ["-accessed_at", "-id"]
        indexes = [
            models.Index(fields=["customer", "-accessed_at"], name="access_customer_newest"),
        ]

    def __str__(self) -> str:
        return f"{self.username} read customer {self.customer_id} ({self.reason})"

    def save(self, *args, **kwargs) -> None:
        if not self._state.adding:
            raise PermissionError("the context access log is append-only")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise PermissionError("the context access log is append-only")
