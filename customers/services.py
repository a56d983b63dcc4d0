"""Writes about customers: records, preferences with provenance, notes, export and erasure."""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone

from customers.audit import record_context_access, record_offer_access  # noqa: F401 (re-export)
from customers.card_numbers import mask_card_numbers, mask_card_numbers_in  # noqa: F401
from customers.models import (
    AccessReason,
    CallNote,
    Channel,
    Consent,
    Customer,
    HoldTolerance,
    Pace,
    PhoneNumber,
    Provenance,
    ReturnBehaviour,
    SurveyTrust,
)
from customers.phone_numbers import normalise_phone_number
from customers.selectors import access_log, note_data, person_name
from routing.models import Call

# What can be recorded about how a caller likes to be served, and the values each may take.
RECORDABLE = {
    "pace": Pace.values,
    "hold_tolerance": HoldTolerance.values,
    "preferred_channel": Channel.values,
    "consent": Consent.values,
}
NOTE_CONTEXT_FIELDS = ("occasion", "intent", "shopping_for", "sizes")
ERASED_NAME = "(erased)"

logger = logging.getLogger(__name__)


def normalise_phones(raw_numbers: list[str]) -> list[str]:
    """E.164 for each number, once each; a number that does not parse is named in the error."""
    numbers: list[str] = []
    bad = []
    for raw in raw_numbers:
        number = normalise_phone_number(str(raw))
        if number is None:
            bad.append(f"{raw!r} is not a phone number.")
        elif number not in numbers:
            numbers.append(number)
    if bad:
        raise ValidationError({"phones": bad})
    return numbers


def _set_preference(
    customer: Customer, *, preference: str, value: str, source: str, set_by: Any
) -> None:
    if preference not in RECORDABLE:
        raise ValidationError({"preference": [f"{preference!r} cannot be recorded."]})
    if value not in RECORDABLE[preference]:
        choices = ", ".join(RECORDABLE[preference])
        raise ValidationError({preference: [f"{value!r} is not one of {choices}."]})
    if source not in (Provenance.SAID_BY_CALLER, Provenance.INFERRED_BY_AGENT):
        raise ValidationError({"source": ["Say who it came from: 'caller' or 'agent'."]})
    setattr(customer, preference, value)
    setattr(customer, f"{preference}_source", source)
    setattr(customer, f"{preference}_set_by", set_by)
    setattr(customer, f"{preference}_set_at", timezone.now())


def _check_external_id(external_id: str | None, *, customer_id: int | None = None) -> None:
    if not external_id:
        return
    taken = Customer.objects.filter(external_id=external_id).exclude(id=customer_id)
    if taken.exists():
        raise ValidationError({"external_id": ["Another customer has this external id."]})


def _preferences_from(fields: dict[str, Any]) -> dict[str, str]:
    """The API's `hold_ok` (true / false / null) is the model's hold tolerance."""
    preferences = {name: fields[name] for name in RECORDABLE if fields.get(name) is not None}
    if "hold_ok" in fields:
        hold_ok = fields["hold_ok"]
        preferences["hold_tolerance"] = (
            HoldTolerance.UNKNOWN
            if hold_ok is None
            else HoldTolerance.FINE
            if hold_ok
            else HoldTolerance.AVOID
        )
    return preferences


@transaction.atomic
def create_customer(
    *,
    name: str,
    phones: list[str],
    email: str = "",
    external_id: str | None = None,
    customer_since: Any = None,
    recorded_by: Any = None,
    source: str = Provenance.SAID_BY_CALLER,
    **preferences: Any,
) -> Customer:
    """A new customer. `preferences` may hold pace, hold_ok or hold_tolerance,
    preferred_channel and consent, each recorded with `source` and `recorded_by`."""
    if not name.strip():
        raise ValidationError({"name": ["A customer needs a name."]})
    numbers = normalise_phones(phones)
    _check_external_id(external_id)
    customer = Customer(
        name=name.strip(),
        email=email,
        external_id=external_id or None,
        customer_since=customer_since,
    )
    for preference, value in _preferences_from(preferences).items():
        _set_preference(
            customer, preference=preference, value=value, source=source, set_by=recorded_by
        )
    customer.save()
    PhoneNumber.objects.bulk_create(
        [PhoneNumber(customer=customer, number=number) for number in numbers]
    )
    return customer


@transaction.atomic
def update_customer(
    *,
    customer: Customer,
    changed_by: Any,
    source: str = Provenance.SAID_BY_CALLER,
    **changes: Any,
) -> Customer:
    """Change a customer's record. Preferences and consent are recorded with their provenance;
    `phones`, when given, replaces the customer's numbers."""
    if "name" in changes:
        if not str(changes["name"]).strip():
            raise ValidationError({"name": ["A customer needs a name."]})
        customer.name = str(changes["name"]).strip()
    if "email" in changes:
        customer.email = changes["email"] or ""
    if "external_id" in changes:
        _check_external_id(changes["external_id"], customer_id=customer.id)
        customer.external_id = changes["external_id"] or None
    if "customer_since" in changes:
        customer.customer_since = changes["customer_since"]
    for preference, value in _preferences_from(changes).items():
        _set_preference(
            customer, preference=preference, value=value, source=source, set_by=changed_by
        )
    customer.save()
    if changes.get("phones") is not None:
        numbers = normalise_phones(changes["phones"])
        customer.phones.exclude(number__in=numbers).delete()
        held = set(customer.phones.values_list("number", flat=True))
        PhoneNumber.objects.bulk_create(
            [PhoneNumber(customer=customer, number=n) for n in numbers if n not in held]
        )
    return customer


@transaction.atomic
def record_preference(
    *, customer: Customer, preference: str, value: str, source: str, set_by: Any
) -> Customer:
    """Record what the caller said (source "caller") or an agent inferred (source "agent")
    about pace, hold tolerance, preferred channel or consent: who recorded it and when."""
    _set_preference(customer, preference=preference, value=value, source=source, set_by=set_by)
    customer.save(
        update_fields=[
            preference,
            f"{preference}_source",
            f"{preference}_set_by",
            f"{preference}_set_at",
        ]
    )
    return customer


def record_consent(*, customer: Customer, consent: str, source: str, set_by: Any) -> Customer:
    return record_preference(
        customer=customer, preference="consent", value=consent, source=source, set_by=set_by
    )


@transaction.atomic
def add_note(
    *,
    customer: Customer,
    author: Any,
    text: str,
    call: Call | None = None,
    occasion: str = "",
    intent: str = "",
    shopping_for: str = "",
    sizes: str = "",
    open_matter: bool = False,
) -> CallNote:
    """A note for the next colleague; card numbers are masked before anything is stored."""
    if call is not None and call.customer_id not in (None, customer.id):
        is_candidate = call.candidates.filter(id=customer.id).exists()
        if not is_candidate:
            raise ValidationError({"call_id": ["That call is not this customer's."]})
    context = {"occasion": occasion, "intent": intent, "shopping_for": shopping_for, "sizes": sizes}
    if not text.strip() and not any(value.strip() for value in context.values()):
        raise ValidationError({"text": ["Write a note or fill in the context."]})
    return CallNote.objects.create(
        customer=customer,
        author=author,
        call=call,
        text=mask_card_numbers(text),
        open_matter=open_matter,
        **{field: mask_card_numbers(value.strip()) for field, value in context.items()},
    )


def _preference_export(customer: Customer, name: str) -> dict[str, Any]:
    set_at = getattr(customer, f"{name}_set_at")
    return {
        "value": getattr(customer, name),
        "source": getattr(customer, f"{name}_source"),
        "set_by": person_name(getattr(customer, f"{name}_set_by")),
        "set_at": set_at.isoformat() if set_at else None,
    }


@transaction.atomic
def export_customer(*, customer: Customer, exported_by: Any) -> dict[str, Any]:
    """Everything held about the customer, including who has looked at them (this export too)."""
    record_context_access(customer_ids=[customer.id], user=exported_by, reason=AccessReason.EXPORT)
    customer = Customer.objects.select_related(
        *[f"{name}_set_by__agent" for name in RECORDABLE]
    ).get(id=customer.id)
    notes = CallNote.objects.filter(customer=customer).select_related("author__agent")
    calls = (
        Call.objects.filter(customer=customer)
        .select_related("queue", "agent")
        .order_by("created_at", "id")
    )
    return {
        "exported_at": timezone.now().isoformat(),
        "exported_by": exported_by.get_username(),
        "customer": {
            "id": customer.id,
            "name": customer.name,
            "email": customer.email,
            "external_id": customer.external_id,
            "customer_since": customer.customer_since.isoformat()
            if customer.customer_since
            else None,
            "created_at": customer.created_at.isoformat(),
            "erased_at": customer.erased_at.isoformat() if customer.erased_at else None,
            "preferences": {name: _preference_export(customer, name) for name in RECORDABLE},
            "survey_trust": customer.survey_trust,
            "survey_trust_at": customer.survey_trust_at.isoformat()
            if customer.survey_trust_at
            else None,
            "return_behaviour": customer.return_behaviour,
        },
        "phones": [
            {"number": phone.number, "label": phone.label} for phone in customer.phones.all()
        ],
        "notes": [note_data(note) for note in notes],
        "calls": [
            {
                "call_id": call.telephony_call_id,
                "from": call.from_e164 or call.from_number,
                "queue": call.queue.slug if call.queue else None,
                "state": call.state,
                "agent": call.agent.display_name if call.agent else None,
                "identity_verified": call.identity_verified,
                "created_at": call.created_at.isoformat(),
                "connected_at": call.connected_at.isoformat() if call.connected_at else None,
                "ended_at": call.ended_at.isoformat() if call.ended_at else None,
            }
            for call in calls
        ],
        "context_accesses": access_log(customer.id),
    }


@transaction.atomic
def erase_customer(*, customer: Customer, erased_by: Any) -> Customer:
    """Remove the customer's personal data, keep the anonymous rows that queue figures count.

    Gone: name, email, external id, phone numbers, notes' text and context, preferences, trust
    answers, and the caller's number on their calls and call events. Kept: the customer row
    (anonymous), its calls (queue, agent, state, times) and the access log. Afterwards their
    number belongs to nobody, so a call from it is a new caller.
    """
    customer = Customer.objects.select_for_update().get(id=customer.id)
    numbers = list(customer.phones.values_list("number", flat=True))
    still_held = set(
        PhoneNumber.objects.filter(number__in=numbers)
        .exclude(customer=customer)
        .values_list("number", flat=True)
    )
    no_longer_held = [number for number in numbers if number not in still_held]

    customer.phones.all().delete()
    CallNote.objects.filter(customer=customer).update(
        text="", occasion="", intent="", shopping_for="", sizes=""
    )
    customer.name = ERASED_NAME
    customer.email = ""
    customer.external_id = None
    customer.customer_since = None
    for name in RECORDABLE:
        unknown = Consent.CLOSED if name == "consent" else "unknown"
        setattr(customer, name, unknown)
        setattr(customer, f"{name}_source", Provenance.UNKNOWN)
        setattr(customer, f"{name}_set_by", None)
        setattr(customer, f"{name}_set_at", None)
    customer.survey_trust = SurveyTrust.UNKNOWN
    customer.survey_trust_at = None
    customer.return_behaviour = ReturnBehaviour.UNKNOWN
    customer.erased_at = timezone.now()
    customer.save()

    Call.candidates.through.objects.filter(customer_id=customer.id).delete()
    their_calls = Call.objects.filter(customer=customer)
    if no_longer_held:
        their_calls = their_calls | Call.objects.filter(
            customer__isnull=True, from_e164__in=no_longer_held
        )
    call_ids = list(their_calls.values_list("id", flat=True))
    Call.objects.filter(id__in=call_ids).update(from_number="", from_e164="")
    if call_ids:
        # The events keep what routing needs; the caller's number and free metadata go.
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE routing_callevent SET payload = payload - 'from' - 'metadata' "
                "WHERE call_id = ANY(%s)",
                [call_ids],
            )
    logger.info("customer %s erased by %s", customer.id, erased_by.get_username())
    return customer
