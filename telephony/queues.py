"""Which queue a call waits in: the queue the telephony system names, else the one the dialled
number reaches, else the default queue (created when missing: a call is never dropped)."""

from __future__ import annotations

from typing import Any

from django.conf import settings

from customers.phone_numbers import normalise_phone_number
from infrastructure.database import rows
from routing.models import Queue

# SQL after WHERE, with the parameters of `queue_wanted`: the chosen queue, one row.
QUEUE_CHOSEN = """slug = ANY(%(slugs)s) OR numbers && %(dialled)s::varchar[]
    ORDER BY CASE
        WHEN %(wanted)s <> '' AND slug = %(wanted)s THEN 0
        WHEN numbers && %(dialled)s::varchar[] THEN 1
        ELSE 2
    END, id
    LIMIT 1"""


def choose_queue(*, queue_slug: str, to_number: str) -> Queue:
    chosen = rows.first_where(Queue, QUEUE_CHOSEN, queue_wanted(queue_slug, to_number))
    return chosen or default_queue()


def queue_is_named(queue: Queue, *, queue_slug: str, to_number: str) -> bool:
    """Whether `queue` is the one `queue_slug` or the dialled `to_number` names, rather than the
    default queue a call to any other number waits in."""
    dialled = queue_wanted(queue_slug, to_number)["dialled"]
    return (bool(queue_slug) and queue.slug == queue_slug) or bool(
        set(dialled) & set(queue.numbers or ())
    )


def queue_wanted(queue_slug: str, to_number: str) -> dict[str, Any]:
    dialled = sorted(
        {number for number in (to_number, normalise_phone_number(to_number)) if number}
    )
    return {
        "slugs": [slug for slug in (queue_slug, settings.TELEPHONY_DEFAULT_QUEUE) if slug],
        "dialled": dialled,
        "wanted": queue_slug,
    }


def default_queue() -> Queue:
    slug = settings.TELEPHONY_DEFAULT_QUEUE
    default, _ = Queue.objects.get_or_create(
        slug=slug, defaults={"name": slug.replace("-", " ").title()}
    )
    return default
