"""Writes about customers: records, preferences with provenance, notes."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from customers.card_numbers import mask_card_numbers
from customers.models import (
    CallNote,
    Channel,
    Consent,
    Customer,
    HoldTolerance,
    Pace,
    PhoneNumber,
    Provenance,
)
from customers.phone_numbers import normalise_phone_number
from infrastructure.errors import Gone

# What can be recorded about how a caller likes to be served, and the values each may take.
RECORDABLE = {
    "pace": Pace.values,
    "hold_tolerance": HoldTolerance.values,
    "preferred_channel": Channel.values,
    "consent": Consent.values,
}


class CustomerErased(Gone):
    """A write reached a customer whose personal data has been erased: nothing is written."""

    def __init__(self, customer_id: int) -> None:
        super().__init__("This customer's personal data has been erased.")
        self.customer_id = customer_id


def _lock_held_customer(customer_id: int) -> Customer:
    """The customer's row, locked for this transaction: an erase and every write to the same
    customer take turns, and whoever comes after an erase sees it."""
    customer = Customer.objects.select_for_update().get(id=customer_id)
    if customer.erased_at is not None:
        raise CustomerErased(customer_id)
    return customer


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
    if source not in (
        Provenance.SAID_BY_CALLER,
        Provenance.SAID_ON_KEYPAD,
        Provenance.INFERRED_BY_AGENT,
    ):
        raise ValidationError({"source": ["Say who it came from: 'caller' or 'agent'."]})
    setattr(customer, preference, value)
    setattr(customer, f"{preference}_source", source)
    setattr(customer, f"{preference}_set_by", set_by)
    setattr(customer, f"{preference}_set_at", timezone.now())


EXTERNAL_ID_TAKEN = {"external_id": ["Another customer has this external id."]}


def _check_external_id(external_id: str | None, *, customer_id: int | None = None) -> None:
    if not external_id:
        return
    taken = Customer.objects.filter(external_id=external_id).exclude(id=customer_id)
    if taken.exists():
        raise ValidationError(EXTERNAL_ID_TAKEN)


@contextmanager
def _external_id_still_free(external_id: str | None) -> Iterator[None]:
    """Writes the customer: the check above sees only what was committed before it, so a
    customer given the same external id at the same moment is refused here, by the unique
    index, with the same 400 (not an IntegrityError's 500)."""
    if not external_id:
        yield
        return
    try:
        with transaction.atomic():
            yield
    except IntegrityError as conflict:
        constraint = getattr(getattr(conflict.__cause__, "diag", None), "constraint_name", "")
        if "external_id" not in (constraint or ""):
            raise
        raise ValidationError(EXTERNAL_ID_TAKEN) from conflict


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
    with _external_id_still_free(customer.external_id):
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
    `phones`, when given, replaces the customer's numbers.

    The row is re-read under its lock and only the changed columns are written, so two changes
    at once keep each other's fields and a change racing an erase cannot write the data back
    (CustomerErased)."""
    customer = _lock_held_customer(customer.id)
    changed: list[str] = []
    if "name" in changes:
        if not str(changes["name"]).strip():
            raise ValidationError({"name": ["A customer needs a name."]})
        customer.name = str(changes["name"]).strip()
        changed.append("name")
    if "email" in changes:
        customer.email = changes["email"] or ""
        changed.append("email")
    if "external_id" in changes:
        _check_external_id(changes["external_id"], customer_id=customer.id)
        customer.external_id = changes["external_id"] or None
        changed.append("external_id")
    if "customer_since" in changes:
        customer.customer_since = changes["customer_since"]
        changed.append("customer_since")
    for preference, value in _preferences_from(changes).items():
        _set_preference(
            customer, preference=preference, value=value, source=source, set_by=changed_by
        )
        changed.extend(_recorded_fields(preference))
    if changed:
        with _external_id_still_free(changes.get("external_id")):
            customer.save(update_fields=changed)
    if changes.get("phones") is not None:
        numbers = normalise_phones(changes["phones"])
        customer.phones.exclude(number__in=numbers).delete()
        held = set(customer.phones.values_list("number", flat=True))
        PhoneNumber.objects.bulk_create(
            [PhoneNumber(customer=customer, number=n) for n in numbers if n not in held]
        )
    return customer


def _recorded_fields(preference: str) -> list[str]:
    return [preference, f"{preference}_source", f"{preference}_set_by", f"{preference}_set_at"]


@transaction.atomic
def record_preference(
    *, customer: Customer, preference: str, value: str, source: str, set_by: Any
) -> Customer:
    """Record what the caller said (source "caller") or an agent inferred (source "agent")
    about pace, hold tolerance, preferred channel or consent: who recorded it and when."""
    _lock_held_customer(customer.id)
    _set_preference(customer, preference=preference, value=value, source=source, set_by=set_by)
    customer.save(update_fields=_recorded_fields(preference))
    return customer


@transaction.atomic
def add_note(
    *,
    customer: Customer,
    author: Any,
    text: str,
    call_id: int | None = None,
    occasion: str = "",
    intent: str = "",
    shopping_for: str = "",
    sizes: str = "",
    open_matter: bool = False,
) -> CallNote:
    """A note for the next colleague; card numbers are masked before anything is stored.
    `call_id` is the routing Call it was written on (its caller checks the call is theirs and
    gives the note that call's wrap-up code: routing.wrap_up.label_note).
    Written under the customer's lock, so a note racing an erase is refused (CustomerErased)
    or erased with the rest, never kept."""
    context = {"occasion": occasion, "intent": intent, "shopping_for": shopping_for, "sizes": sizes}
    if not text.strip() and not any(value.strip() for value in context.values()):
        raise ValidationError({"text": ["Write a note or fill in the context."]})
    _lock_held_customer(customer.id)
    return CallNote.objects.create(
        customer=customer,
        author=author,
        call_id=call_id,
        text=mask_card_numbers(text),
        open_matter=open_matter,
        **{field: mask_card_numbers(value.strip()) for field, value in context.items()},
    )
