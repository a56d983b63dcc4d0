"""The wall counts today's wrap-up codes per queue (issue 29): how answered calls ended, most
chosen first, and how many were left without a code; yesterday's and unanswered calls do not
count; a code the admin deleted still counts under the label the call kept."""

from datetime import timedelta

import pytest
from django.utils import timezone

from routing import wrap_up
from routing.models import Call, Queue
from supervisor import wall
from supervisor.figures import day_start

pytestmark = pytest.mark.django_db

NOON = day_start(timezone.now()) + timedelta(hours=12)
_serial = iter(range(1, 100_000))


def call(queue: Queue, *, code=None, answered: bool = True, days_ago: int = 0) -> Call:
    moment = NOON - timedelta(days=days_ago, hours=1)
    return Call.objects.create(
        telephony_call_id=f"CODES{next(_serial)}",
        queue=queue,
        state="ended" if answered else "abandoned",
        created_at=moment,
        queued_at=moment,
        connected_at=moment + timedelta(seconds=5) if answered else None,
        ended_at=moment + timedelta(minutes=3),
        wrap_up_code=code,
        wrap_up_label=code.label if code else "",
    )


def test_the_wall_counts_todays_wrap_up_codes_per_queue(queue):
    vip = Queue.objects.create(slug="vip", name="VIP")
    codes = {code.label: code for code in wrap_up.give_default_codes(queue)}
    vip_refund = {code.label: code for code in wrap_up.give_default_codes(vip)}["Refund"]
    for _ in range(3):
        call(queue, code=codes["Exchange arranged"])
    call(queue, code=codes["Refund"])
    call(queue)
    call(queue, answered=False)
    call(queue, code=codes["Refund"], days_ago=1)
    call(vip, code=vip_refund)
    codes["Refund"].delete()

    figures = wall.figures(NOON)
    stats = wall.queue_stats(queue, NOON)

    by_slug = {q["slug"]: q["today"]["wrap_up_codes"] for q in figures["queues"]}
    assert by_slug == {
        "loyalty": {
            "codes": [
                {"label": "Exchange arranged", "count": 3},
                {"label": "Refund", "count": 1},
            ],
            "uncoded": 1,
        },
        "vip": {"codes": [{"label": "Refund", "count": 1}], "uncoded": 0},
    }
    assert stats["today"]["wrap_up_codes"] == by_slug["loyalty"]
