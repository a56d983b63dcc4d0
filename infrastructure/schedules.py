"""When Celery beat hands a sweep to a worker: every interval while there is something to do,
never on a quiet line.

Beat asks once an interval, with one query (the sweep's own `check`, e.g. the router's
`anything_to_sweep`), instead of sending a task a second that a worker receives, runs and
acknowledges only to find nothing to do. When the database cannot answer, beat sends the task
anyway: the worker decides.

Loaded with the settings, before Django's apps: the check's module is imported when beat first
asks.

Beat keeps its schedule in a file (`--schedule`), pickled: `ForgivingPersistentScheduler` starts it
afresh when the file names code that has moved since it was written.
"""

from __future__ import annotations

import logging
from datetime import datetime

from celery.beat import PersistentScheduler
from celery.schedules import schedstate, schedule

logger = logging.getLogger(__name__)


class WhileAnythingToDo(schedule):
    """Due every interval while `check` (the dotted path of a function of `now`) says there is
    work."""

    def __init__(self, run_every=None, *, check: str, **kwargs):
        super().__init__(run_every, **kwargs)
        self.check = check

    def __reduce__(self):
        # Beat keeps its schedule in a shelve file: pickled with the check it asks.
        return _rebuilt, (self.run_every, self.relative, self.check)

    def is_due(self, last_run_at: datetime) -> schedstate:
        state = super().is_due(last_run_at)
        if not state.is_due or _anything_to_do(self.check):
            return state
        # Not run, so still due: asked again after one interval.
        return schedstate(is_due=False, next=self.seconds)


def _rebuilt(run_every, relative: bool, check: str) -> WhileAnythingToDo:
    return WhileAnythingToDo(run_every, relative=relative, check=check)


def _anything_to_do(check: str) -> bool:
    from django.db import DatabaseError, connection
    from django.utils import timezone
    from django.utils.module_loading import import_string

    try:
        return import_string(check)(now=timezone.now())
    except DatabaseError as failed:
        logger.warning("%s: task sent unchecked: %s", check, failed)
        # A connection the database dropped (a restart) is opened afresh next time.
        connection.close()
        return True


class ForgivingPersistentScheduler(PersistentScheduler):
    """Celery's scheduler, which starts a schedule file afresh, from the settings, when the file
    holds entries this code can no longer load (a schedule class or function that moved or is
    gone, as after an upgrade), instead of beat failing to start. The file keeps only when each
    entry last ran, and every entry here runs again within an interval."""

    def _create_schedule(self):
        try:
            self._store["entries"]
        except (ImportError, AttributeError) as moved:
            logger.warning("beat's schedule file names code that moved (%s): started afresh", moved)
            self._store.close()
            self._remove_db()
            self._store = self._open_schedule()
        except Exception:
            # Celery's own cases (a new file, a corrupted one) are handled below.
            pass
        super()._create_schedule()
