"""The supervisor's list of call backs (`GET /api/callbacks/`, docs/supervisor.md): those waiting
to be made and those not reached after every try, oldest place first. Who each is for is named as
the wall names callers (consent allows onlookers to know it), with the number to call them on,
which the list shows whatever the consent, as the abandoned callers' list does: so every
identified customer on it is recorded in the access log, once per call back."""

from __future__ import annotations

from typing import Any

from django.db.models import OuterRef, Subquery
from django.utils import timezone

from customers.audit import record_first_sight
from customers.models import AccessReason
from routing.models import PENDING_CALLBACK_STATES, Callback, CallbackState, Voicemail
from supervisor.figures import iso
from supervisor.floor import caller_shown

LISTED_STATES = sorted({*PENDING_CALLBACK_STATES, CallbackState.NOT_REACHED})


def callbacks_listed() -> list[dict[str, Any]]:
    now = timezone.now()
    latest_message = Voicemail.objects.filter(callback=OuterRef("pk")).order_by(
        "-created_at", "-id"
    )
    rows = (
        Callback.objects.filter(state__in=LISTED_STATES)
        .annotate(
            message_id=Subquery(latest_message.values("id")[:1]),
            message_seconds=Subquery(latest_message.values("duration_seconds")[:1]),
        )
        .order_by("place", "id")
        .values(
            "message_id",
            "message_seconds",
            "id",
            "state",
            "number",
            "place",
            "requested_at",
            "attempts",
            "next_attempt_at",
            "queue__slug",
            "queue__callback_attempts",
            "customer_id",
            "customer__name",
            "customer__consent",
            "customer__erased_at",
            "requested_on_id",
            "requested_on__last_agent_id",
            "requested_on__last_agent__display_name",
        )[:500]
    )
    return [
        {
            "id": row["id"],
            "state": row["state"],
            "queue": row["queue__slug"],
            "customer": (
                caller_shown(row, caller_names=True)
                if row["customer_id"] is not None
                else "Unknown caller"
            ),
            "number": row["number"],
            "waiting_since": iso(row["place"]),
            "age_seconds": max(0, int((now - row["place"]).total_seconds())),
            "requested_at": iso(row["requested_at"]),
            "last_agent": (
                {
                    "id": row["requested_on__last_agent_id"],
                    "display_name": row["requested_on__last_agent__display_name"],
                }
                if row["requested_on__last_agent_id"]
                else None
            ),
            "attempts": row["attempts"],
            "attempts_allowed": row["queue__callback_attempts"],
            "next_attempt_at": iso(row["next_attempt_at"]),
            # The caller left a message (routing.voicemails): heard at /api/voicemails/<id>/audio/.
            "message": (
                {"id": row["message_id"], "duration_seconds": row["message_seconds"]}
                if row["message_id"] is not None
                else None
            ),
            "_seen": (row["customer_id"], row["requested_on_id"]),
        }
        for row in rows
    ]


def callbacks_seen(*, user: Any) -> list[dict[str, Any]]:
    """`callbacks_listed` as `user` is shown it, each identified customer recorded once per call
    back (the call that asked for it) in the access log, reason supervisor."""
    listed = callbacks_listed()
    record_first_sight(
        shown=[row["_seen"] for row in listed if row["_seen"][0] is not None],
        user=user,
        reason=AccessReason.SUPERVISOR,
    )
    for row in listed:
        del row["_seen"]
    return listed
