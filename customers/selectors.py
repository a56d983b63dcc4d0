"""Reads about customers: the caller context of an offer, and who may see a customer.

Consent decides what a person is shown (docs/privacy.md):
- `open`: everything held;
- `conditional`: history, but preferences an agent inferred are reported as unknown;
- `closed`: name, what the caller said about their pace, and notes about an open matter only.

Nothing here writes the access log: the caller of a read records it (customers.audit).
"""

from __future__ import annotations

from typing import Any

from django.db.models import Count, F, Q, QuerySet, Subquery, Window

from customers.models import CallNote, Consent, ContextAccess, Customer, PhoneNumber, Provenance
from routing.call_states import FINAL_STATES, CallState
from routing.models import Agent, AgentStatus, Call, Offer, OfferState

NOTES_ON_CARD = 5
MORE_NOTES_LIMIT = 50
PREFERENCES = ("pace", "hold_tolerance", "preferred_channel")
_USERS_WHO_SET = [f"{name}_set_by__agent" for name in (*PREFERENCES, "consent")]


def customer_ids_for_number(e164: str) -> list[int]:
    """The customers whose phone is `e164` (an erased customer has no phones left)."""
    if not e164:
        return []
    return list(
        PhoneNumber.objects.filter(number=e164, customer__erased_at__isnull=True)
        .order_by("customer_id")
        .values_list("customer_id", flat=True)
        .distinct()
    )


def person_name(user: Any) -> str | None:
    """How a person is shown on a screen: their agent name, else their full or user name."""
    if user is None:
        return None
    agent = getattr(user, "agent", None)
    if agent is not None:
        return agent.display_name
    return user.get_full_name() or user.username


def _iso(moment: Any) -> str | None:
    return moment.isoformat() if moment is not None else None


def _preference(customer: Customer, name: str, *, shown: bool) -> dict[str, Any]:
    if not shown:
        return {"value": "unknown", "source": Provenance.UNKNOWN, "set_by": None, "set_at": None}
    return {
        "value": getattr(customer, name),
        "source": getattr(customer, f"{name}_source"),
        "set_by": person_name(getattr(customer, f"{name}_set_by")),
        "set_at": _iso(getattr(customer, f"{name}_set_at")),
    }


def _preference_shown(customer: Customer, name: str) -> bool:
    inferred = getattr(customer, f"{name}_source") == Provenance.INFERRED_BY_AGENT
    if customer.consent == Consent.OPEN:
        return True
    if customer.consent == Consent.CONDITIONAL:
        return not inferred
    return name == "pace" and not inferred


def note_data(note: CallNote) -> dict[str, Any]:
    return {
        "id": note.id,
        "text": note.text,
        "author": person_name(note.author),
        "created_at": _iso(note.created_at),
        "call_id": note.call_id,
        "occasion": note.occasion,
        "intent": note.intent,
        "shopping_for": note.shopping_for,
        "sizes": note.sizes,
        "open_matter": note.open_matter,
    }


def _visible_notes(customer_id: int, consent: str) -> QuerySet[CallNote]:
    notes = CallNote.objects.filter(customer_id=customer_id)
    if consent == Consent.CLOSED:
        notes = notes.filter(open_matter=True)
    return notes


def _newest_notes(notes: QuerySet[CallNote], limit: int) -> tuple[list[CallNote], int]:
    """The newest `limit` notes and how many older ones are left, in one query."""
    page = list(
        notes.select_related("author__agent")
        .annotate(total=Window(Count("id")))
        .order_by("-created_at", "-id")[:limit]
    )
    total = page[0].total if page else 0
    return page, total - len(page)


def _last_agent(customer_id: int) -> dict[str, Any] | None:
    call = (
        Call.objects.filter(
            customer_id=customer_id, connected_at__isnull=False, agent__isnull=False
        )
        .select_related("agent")
        .order_by("-connected_at")
        .only("connected_at", "agent__id", "agent__display_name")
        .first()
    )
    if call is None:
        return None
    return {
        "id": call.agent.id,
        "display_name": call.agent.display_name,
        "last_spoke_at": _iso(call.connected_at),
    }


def customer_context(customer: Customer, *, identity_verified: bool = False) -> dict[str, Any]:
    """The `caller.customer` object of docs/sockets.md, as consent allows. Two queries.

    `customer` must come from `customers_with_recorders()` so the preference recorders are
    loaded with it.
    """
    history_hidden = customer.consent == Consent.CLOSED
    notes, more = _newest_notes(_visible_notes(customer.id, customer.consent), NOTES_ON_CARD)
    return {
        "id": customer.id,
        "name": customer.name,
        "consent": customer.consent,
        "preferences": {
            name: _preference(customer, name, shown=_preference_shown(customer, name))
            for name in PREFERENCES
        },
        "trust": {
            "consent": customer.consent,
            "identity_verified": identity_verified,
            "survey_trust": "unknown" if history_hidden else customer.survey_trust,
            "customer_since": (
                None
                if history_hidden or customer.customer_since is None
                else customer.customer_since.isoformat()
            ),
            "return_behaviour": "unknown" if history_hidden else customer.return_behaviour,
        },
        "last_agent": None if history_hidden else _last_agent(customer.id),
        "notes": [note_data(note) for note in notes],
        "more_notes": more,
        "history_hidden": history_hidden,
    }


def customers_with_recorders() -> QuerySet[Customer]:
    """Customers still held (not erased), with whoever recorded their preferences."""
    return Customer.objects.filter(erased_at__isnull=True).select_related(*_USERS_WHO_SET)


def caller_context(
    *,
    from_e164: str,
    customer_ids: list[int],
    agent_id: int | None,
    identity_verified: bool = False,
) -> dict[str, Any]:
    """The `caller` object of an offer (docs/sockets.md). At most three queries, whatever the
    history: one for the customer (or the candidates), one for notes and their count, one for
    the last agent.

    `agent_id` is the agent being shown the card; `identity_verified` comes from the call.
    Reading is not recording: the router records the screen-pop with
    `customers.audit.record_offer_access`.
    """
    caller: dict[str, Any] = {
        "kind": "unknown",
        "number": from_e164,
        "customer": None,
        "candidates": [],
    }
    if len(customer_ids) > 1:
        candidates = list(
            Customer.objects.filter(id__in=customer_ids, erased_at__isnull=True)
            .order_by("name", "id")
            .values("id", "name")
        )
        if len(candidates) > 1:
            caller.update(kind="shared", candidates=candidates)
            return caller
        customer_ids = [candidate["id"] for candidate in candidates]
    if len(customer_ids) == 1:
        customer = customers_with_recorders().filter(id=customer_ids[0]).first()
        if customer is not None:
            caller.update(
                kind="known",
                customer=customer_context(customer, identity_verified=identity_verified),
            )
    return caller


def more_notes(customer_id: int, before_id: int | None, limit: int = 20) -> dict[str, Any]:
    """The notes older than note `before_id` ("N more" on the card; None: from the newest), as
    consent allows, with how many older ones are left. Two queries.
    """
    limit = max(1, min(limit, MORE_NOTES_LIMIT))
    consent = (
        Customer.objects.filter(id=customer_id, erased_at__isnull=True)
        .values_list("consent", flat=True)
        .first()
    )
    if consent is None:
        return {"notes": [], "more_notes": 0}
    notes = _visible_notes(customer_id, consent)
    if before_id is not None:
        before = CallNote.objects.filter(id=before_id, customer_id=customer_id).values(
            "created_at"
        )[:1]
        notes = notes.filter(
            Q(created_at__lt=Subquery(before)) | Q(created_at=Subquery(before), id__lt=before_id)
        )
    page, more = _newest_notes(notes, limit)
    return {"notes": [note_data(note) for note in page], "more_notes": more}


# Who may see a customer ---------------------------------------------------------------------

_SEEN_DURING_CALL = (CallState.CONNECTED, CallState.HELD, CallState.TRANSFERRED, CallState.WRAP_UP)


def _calls_about(customer_id: int) -> Q:
    return Q(customer_id=customer_id) | Q(candidates__id=customer_id)


def call_access_reason(*, user: Any, customer_id: int) -> tuple[str, int] | None:
    """Why this person may see the customer without typing a reason: ("offer" | "call", call id).

    An agent sees a customer whose call is ringing for them or is theirs (connected, held,
    wrap-up), and for their wrap-up after the call ended. At most four small queries.
    """
    agent = Agent.objects.filter(user_id=user.id).only("id", "status").first()
    if agent is None:
        return None
    offered = (
        Offer.objects.filter(
            agent_id=agent.id,
            state__in=[OfferState.OFFERED, OfferState.ACCEPTED],
        )
        .exclude(call__state__in=FINAL_STATES)
        .filter(Q(call__customer_id=customer_id) | Q(call__candidates__id=customer_id))
        .values_list("call_id", "state")
        .first()
    )
    if offered is not None:
        call_id, state = offered
        return ("offer" if state == OfferState.OFFERED else "call", call_id)
    talking = (
        Call.objects.filter(
            _calls_about(customer_id), agent_id=agent.id, state__in=_SEEN_DURING_CALL
        )
        .values_list("id", flat=True)
        .first()
    )
    if talking is not None:
        return ("call", talking)
    if agent.status == AgentStatus.WRAP_UP:
        # The telephony side may end the call before the agent has finished their wrap-up.
        latest_ended = (
            Call.objects.filter(agent_id=agent.id, state__in=FINAL_STATES)
            .order_by(F("ended_at").desc(nulls_last=True), "-id")
            .values("id")[:1]
        )
        wrapping_up = (
            Call.objects.filter(_calls_about(customer_id), id=Subquery(latest_ended))
            .values_list("id", flat=True)
            .first()
        )
        if wrapping_up is not None:
            return ("call", wrapping_up)
    return None


def access_log(customer_id: int) -> list[dict[str, Any]]:
    return [
        {
            "username": access.username,
            "reason": access.reason,
            "reason_text": access.reason_text,
            "call_id": access.call_id,
            "accessed_at": _iso(access.accessed_at),
        }
        for access in ContextAccess.objects.filter(customer_id=customer_id).order_by(
            "accessed_at", "id"
        )
    ]


def customer_record(customer: Customer) -> dict[str, Any]:
    """A customer as the API shows them to a person: the consent-filtered context plus the
    identifiers needed to serve them."""
    record = customer_context(customer)
    record.update(
        email=customer.email,
        external_id=customer.external_id,
        phones=list(customer.phones.values_list("number", flat=True)),
    )
    return record


def customer_summaries(*, phone: str | None = None, text: str | None = None, limit: int = 50):
    customers = Customer.objects.filter(erased_at__isnull=True)
    if phone:
        customers = customers.filter(phones__number=phone)
    if text:
        customers = customers.filter(Q(name__icontains=text) | Q(external_id=text))
    return list(customers.distinct().order_by("name", "id").values("id", "name", "consent")[:limit])
