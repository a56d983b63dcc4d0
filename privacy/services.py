"""A customer's rights over their data: everything held about them, and its erasure.

Both span customers, their calls and the telephony events of those calls, so they live above
all three.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from django.contrib.admin.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.db import connection, transaction
from django.utils import timezone

from customers.audit import record_context_access
from customers.models import (
    AccessReason,
    CallNote,
    Consent,
    ContextAccess,
    Customer,
    PhoneNumber,
    Provenance,
    ReturnBehaviour,
    SurveyTrust,
)
from customers.phone_numbers import normalise_phone_number
from customers.selectors import access_log, note_data, preference_data
from customers.services import RECORDABLE, CustomerErased
from routing import callbacks, voicemails
from routing.models import Call, Voicemail
from telephony.models import CallEvent
from telephony.twilio import recordings as twilio_recordings

ERASED_NAME = "(erased)"
# What an erased customer's call events keep: the contract's fields that say nothing about the
# caller (docs/telephony.md). The caller's number, metadata and anything else sent go.
EVENT_FIELDS_KEPT = ["type", "call_id", "occurred_at", "to", "queue", "agent", "reason"]

logger = logging.getLogger(__name__)


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
            "preferences": {name: preference_data(customer, name) for name in RECORDABLE},
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
                "wrap_up_code": call.wrap_up_label or None,
                "call_back_promised": call.call_back_promised,
            }
            for call in calls
        ],
        # The audio stays with the phone system: where it is, and how long.
        "voicemails": [
            {
                "call_id": voicemail.call.telephony_call_id,
                "created_at": voicemail.created_at.isoformat(),
                "duration_seconds": voicemail.duration_seconds,
                "recording_url": voicemail.recording_url,
            }
            for voicemail in Voicemail.objects.filter(customer=customer).select_related("call")
        ],
        "context_accesses": access_log(customer.id),
    }


@transaction.atomic
def erase_customer(*, customer: Customer, erased_by: Any) -> Customer:
    """Remove the customer's personal data, keep the anonymous rows that queue figures count.

    Gone: name, email, external id, phone numbers, notes' text and context, preferences, trust
    answers, the caller's number on their calls, their messages (deleted at Twilio too),
    everything but the routing fields of their call events (and of events from their numbers
    still to apply), their name and numbers in the admin's history, and the typed reasons in
    the access log. Kept: the customer row
    (anonymous), its calls (queue, agent, state, times) and the access log's rows. Afterwards
    their number belongs to nobody, so a call from it is a new caller.

    Taken under the customer's row lock, which every write to a customer takes too
    (customers.services): a change or note racing the erase waits, then is refused.
    """
    customer = Customer.objects.select_for_update().get(id=customer.id)
    if customer.erased_at is not None:
        raise CustomerErased(customer.id)
    numbers = list(customer.phones.values_list("number", flat=True))
    phone_ids = list(customer.phones.values_list("id", flat=True))
    still_held = set(
        PhoneNumber.objects.filter(number__in=numbers)
        .exclude(customer=customer)
        .values_list("number", flat=True)
    )
    no_longer_held = [number for number in numbers if number not in still_held]

    callbacks.erase_callbacks(customer_id=customer.id, numbers=no_longer_held)
    # Before their calls lose the caller's number, which finds an unknown caller's messages.
    recording_sids = voicemails.erase_voicemails(customer_id=customer.id, numbers=no_longer_held)
    twilio_recordings.delete_recordings(recording_sids)
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
    # Before the calls: an event applied meanwhile is found with its call below, and one
    # applied after this finds its number gone and is applied without it (telephony.applying).
    _scrub_call_events("id = ANY(%s)", [_events_still_to_apply_from(no_longer_held)])
    their_calls = Call.objects.filter(customer=customer)
    if no_longer_held:
        their_calls = their_calls | Call.objects.filter(
            customer__isnull=True, from_e164__in=no_longer_held
        )
    call_ids = list(their_calls.values_list("id", flat=True))
    Call.objects.filter(id__in=call_ids).update(from_number="", from_e164="")
    _scrub_call_events("call_id = ANY(%s)", [call_ids])
    _erase_admin_history(customer_id=customer.id, phone_ids=phone_ids)
    ContextAccess.objects.filter(customer_id=customer.id).mask_typed_reasons()
    logger.info("customer %s erased by %s", customer.id, erased_by.get_username())
    return customer


def _events_still_to_apply_from(numbers: list[str]) -> list[int]:
    """The recorded events not applied yet whose caller is on one of `numbers`: their calls do
    not know their caller yet. Few: an event waits for its worker milliseconds, or for as long
    as the broker is away."""
    if not numbers:
        return []
    waiting = CallEvent.objects.filter(fields_to_apply__isnull=False).values_list(
        "id", "fields_to_apply__from_number"
    )
    return [
        event_id
        for event_id, from_number in waiting
        if from_number and normalise_phone_number(from_number) in numbers
    ]


def _scrub_call_events(where: str, params: list[Any]) -> None:
    """The events `where` keep only the fields that say nothing about the caller; one still to
    apply loses its caller's number."""
    if not params[0]:
        return
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {CallEvent._meta.db_table} SET payload = ("
            "SELECT coalesce(jsonb_object_agg(key, value), '{}'::jsonb) "
            "FROM jsonb_each(payload) WHERE key = ANY(%s)), "
            "fields_to_apply = fields_to_apply - 'from_number' "
            f"WHERE {where}",
            [EVENT_FIELDS_KEPT, *params],
        )


def _erase_admin_history(*, customer_id: int, phone_ids: list[int]) -> None:
    """The admin's history names what it changed (the customer's name, an inline's number):
    the entries stay, saying what kind of change was made and when, without the names."""
    entries = LogEntry.objects.filter(
        content_type=ContentType.objects.get_for_model(Customer), object_id=str(customer_id)
    ) | LogEntry.objects.filter(
        content_type=ContentType.objects.get_for_model(PhoneNumber),
        object_id__in=[str(phone_id) for phone_id in phone_ids],
    )
    for entry in entries:
        entry.object_repr = ERASED_NAME
        entry.change_message = _without_objects_named(entry.change_message)
        entry.save(update_fields=["object_repr", "change_message"])


def _without_objects_named(change_message: str) -> str:
    """A change message keeps which fields changed; the related objects it names (e.g. the
    phone number an inline added) are shown as erased."""
    try:
        changes = json.loads(change_message)
    except ValueError:
        return ""
    if not isinstance(changes, list):
        return ""
    for change in changes:
        for detail in change.values() if isinstance(change, dict) else ():
            if isinstance(detail, dict) and "object" in detail:
                detail["object"] = ERASED_NAME
    return json.dumps(changes)
