"""Reads about customers: what a person is shown of one, as their consent allows.

Consent decides what a person is shown (docs/privacy.md):
- `open`: everything held;
- `conditional`: history, but preferences an agent inferred are reported as unknown;
- `closed`: name, what the caller said about their pace, and notes about an open matter only.

Onlookers (the supervisor wall: people watching, not serving the call) are shown a caller's
name only with consent `conditional` or `open` (`named_to_onlookers`).

Nothing here writes the access log: the caller of a read records it (customers.audit). Note
authors are named by their agent name when they have one (the `agent` relation routing gives a
user); nothing here imports routing.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from django.db import connection
from django.db.models import Count, Q, QuerySet, Subquery, Window

from customers.models import CallNote, Consent, ContextAccess, Customer, PhoneNumber, Provenance
from infrastructure.database import rows

NOTES_ON_CARD = 5
MORE_NOTES_LIMIT = 50
PREFERENCES = ("pace", "hold_tolerance", "preferred_channel")
_USERS_WHO_SET = [f"{name}_set_by__agent" for name in (*PREFERENCES, "consent")]


def customer_ids_for_number(e164: str) -> list[int]:
    """The customers whose phone is `e164` (an erased customer has no phones left)."""
    if not e164:
        return []
    with connection.cursor() as cursor:
        cursor.execute(CUSTOMERS_ON_NUMBER_SQL, {"number": e164})
        return [customer_id for (customer_id,) in cursor.fetchall()]


# `customer_ids_for_number` as SQL, for statements that read it with something else (the
# webhook reads the caller's customers and the call's queue in one round trip). Written out
# because every call runs it: the ORM took longer to build it than PostgreSQL to answer.
CUSTOMERS_ON_NUMBER_SQL = f"""
    SELECT DISTINCT phone.customer_id
    FROM "{PhoneNumber._meta.db_table}" phone
    JOIN "{Customer._meta.db_table}" customer ON customer.id = phone.customer_id
    WHERE phone.number = %(number)s AND customer.erased_at IS NULL
    ORDER BY phone.customer_id
"""


def named_to_onlookers(consent: str) -> bool:
    return consent in (Consent.CONDITIONAL, Consent.OPEN)


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


def preference_data(customer: Customer, name: str) -> dict[str, Any]:
    """A preference with where it came from, who recorded it and when."""
    return {
        "value": getattr(customer, name),
        "source": getattr(customer, f"{name}_source"),
        "set_by": person_name(getattr(customer, f"{name}_set_by")),
        "set_at": _iso(getattr(customer, f"{name}_set_at")),
    }


UNKNOWN_PREFERENCE = {
    "value": "unknown",
    "source": Provenance.UNKNOWN,
    "set_by": None,
    "set_at": None,
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
        "wrap_up_code": note.wrap_up_label or None,
    }


def _open_matters_only(consent: str) -> bool:
    return consent == Consent.CLOSED


def _visible_notes(customer_id: int, consent: str) -> QuerySet[CallNote]:
    notes = CallNote.objects.filter(customer_id=customer_id)
    if _open_matters_only(consent):
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


def _newest_notes_on_card(customer_id: int, consent: str) -> tuple[list[CallNote], int]:
    """`_newest_notes(_visible_notes(customer_id, consent), NOTES_ON_CARD)`, the same notes with
    their authors and agents loaded: one statement written as SQL and prepared, as every offer
    runs it (the ORM spent longer building it than PostgreSQL spent answering; see
    infrastructure.database.rows)."""
    author_model, agent_relation, sql = _card_notes_sql(_open_matters_only(consent))
    with rows.prepared_cursor() as cursor:
        cursor.execute(sql, [customer_id])
        found = cursor.fetchall()
    agent_model = agent_relation.related_model
    notes = []
    for row in found:
        (note_values, author_values, agent_values), (total,) = rows.split(
            row, CallNote, author_model, agent_model
        )
        note = rows.instance(CallNote, note_values)
        author = None
        if note.author_id is not None:
            author = rows.instance(author_model, author_values)
            # The agent's primary key leads its columns: none when the author has no agent.
            agent = None if agent_values[0] is None else rows.instance(agent_model, agent_values)
            # As select_related("author__agent") leaves it: no agent is a known None, no query.
            agent_relation.set_cached_value(author, agent)
            if agent is not None:
                agent_relation.field.set_cached_value(agent, author)
        note.author = author
        notes.append(note)
    return notes, (total - len(notes) if notes else 0)


@cache
def _card_notes_sql(open_matters_only: bool) -> tuple[type, Any, str]:
    """The author model, their `agent` relation (routing gives a user one; this names it
    without importing routing) and the card's notes statement. Built on first use: the agent
    relation exists once every app is loaded."""
    author_model = CallNote._meta.get_field("author").related_model
    agent_relation = author_model._meta.get_field("agent")
    agent_model = agent_relation.related_model
    sql = f"""
        SELECT {rows.columns(CallNote, "note")}, {rows.columns(author_model, "author")},
            {rows.columns(agent_model, "agent")}, COUNT(*) OVER ()
        FROM {CallNote._meta.db_table} note
        LEFT JOIN {author_model._meta.db_table} author
            ON author.{author_model._meta.pk.column} = note.author_id
        LEFT JOIN {agent_model._meta.db_table} agent
            ON agent.{agent_relation.field.column} = author.{author_model._meta.pk.column}
        WHERE note.customer_id = %s {"AND note.open_matter" if open_matters_only else ""}
        ORDER BY note.created_at DESC, note.id DESC
        LIMIT {NOTES_ON_CARD:d}
    """
    return author_model, agent_relation, sql


def history_hidden(customer: Customer) -> bool:
    """Closed consent: no history beyond what the call needs (no last agent, tenure, trust)."""
    return customer.consent == Consent.CLOSED


def customer_context(
    customer: Customer,
    *,
    identity_verified: bool = False,
    last_agent: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The `caller.customer` object of docs/sockets.md, as consent allows. One query (the
    notes, with how many more there are).

    `customer` must come from `customers_with_recorders()` so the preference recorders are
    loaded with it. `last_agent` (`id`, `display_name`, `last_spoke_at`) comes from routing,
    which knows calls; it is left out when consent hides history.
    """
    hidden = history_hidden(customer)
    notes, more = _newest_notes_on_card(customer.id, customer.consent)
    return {
        "id": customer.id,
        "name": customer.name,
        "consent": customer.consent,
        "preferences": {
            name: preference_data(customer, name)
            if _preference_shown(customer, name)
            else dict(UNKNOWN_PREFERENCE)
            for name in PREFERENCES
        },
        "trust": {
            "consent": customer.consent,
            "identity_verified": identity_verified,
            "survey_trust": "unknown" if hidden else customer.survey_trust,
            "customer_since": (
                None
                if hidden or customer.customer_since is None
                else customer.customer_since.isoformat()
            ),
            "return_behaviour": "unknown" if hidden else customer.return_behaviour,
        },
        "last_agent": None if hidden else last_agent,
        "notes": [note_data(note) for note in notes],
        "more_notes": more,
        "history_hidden": hidden,
    }


def customers_with_recorders() -> QuerySet[Customer]:
    """Customers still held (not erased), with whoever recorded their preferences."""
    return Customer.objects.filter(erased_at__isnull=True).select_related(*_USERS_WHO_SET)


def load_recorders(customer: Customer) -> Customer:
    """`customer`, loaded without them, given whoever recorded their preferences, as
    `customers_with_recorders()` would have: no query when nobody did (most customers), else
    one."""
    fields = [f"{name}_set_by" for name in (*PREFERENCES, "consent")]
    user_ids = {getattr(customer, f"{field}_id") for field in fields} - {None}
    users = {}
    if user_ids:
        user_model = Customer._meta.get_field("pace_set_by").related_model
        users = user_model.objects.select_related("agent").in_bulk(user_ids)
    for field in fields:
        setattr(customer, field, users.get(getattr(customer, f"{field}_id")))
    return customer


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


def customer_record(customer: Customer, *, last_agent: dict[str, Any] | None) -> dict[str, Any]:
    """A customer as the API shows them to a person: the consent-filtered context plus the
    identifiers needed to serve them."""
    record = customer_context(customer, last_agent=last_agent)
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
