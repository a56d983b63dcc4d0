"""When Celery beat hands the router's sweep to a worker: every interval while anything is in
flight or overdue (a wrap-up within its limit is neither), never on a quiet line.

Beat asks once an interval, with one query (`selectors.anything_to_sweep`), instead of sending
a task a second that a worker receives, runs and acknowledges only to find nothing to do. When
the database cannot answer, beat sends the sweep anyway: the worker decides.

Loaded with the settings, before Django's apps: the query's modules are imported when beat
first asks.
"""

from __future__ import annotations

import logging
from datetime import datetime

from celery.schedules import schedstate, schedule

logger = logging.getLogger(__name__)


class WhileAnythingToSweep(schedule):
    def is_due(self, last_run_at: datetime) -> schedstate:
        state = super().is_due(last_run_at)
        if not state.is_due or _anything_to_sweep():
            return state
        # Not run, so still due: asked again after one interval.
        return schedstate(is_due=False, next=self.seconds)


def _anything_to_sweep() -> bool:
    from django.db import DatabaseError, connection
    from django.utils import timezone

    from routing import selectors

    try:
        return selectors.anything_to_sweep(now=timezone.now())
    except DatabaseError as failed:
        logger.warning("router sweep sent unchecked: %s", failed)
        # A connection the database dropped (a restart) is opened afresh next time.
        connection.close()
        return True
