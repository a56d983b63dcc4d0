"""What every supervisor figure is counted by.

Each figure reads with a fixed number of queries, however many queues, agents or calls there
are: rows are fetched set-wise and grouped in Python or in SQL, never one query per row.

"Today" starts at local midnight (settings.TIME_ZONE). A call belongs to the day it was created
on; its wait starts when it reached the queue (`queued_at`, else when it began ringing).
"""

from __future__ import annotations

from datetime import datetime

from django.db.models import Q
from django.db.models.functions import Coalesce
from django.utils import timezone


def day_start(now: datetime) -> datetime:
    return timezone.localtime(now).replace(hour=0, minute=0, second=0, microsecond=0)


def wait_start() -> Coalesce:
    return Coalesce("queued_at", "ringing_at", "created_at")


def in_queue(queue_id: int | None, field: str = "queue_id") -> Q:
    """One queue's rows, or (None) every queue's."""
    return Q(**{field: queue_id}) if queue_id is not None else Q(**{f"{field}__isnull": False})


def ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None
