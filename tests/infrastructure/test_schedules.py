"""Beat's schedule file, kept between starts, survives an upgrade that moved the code it names."""

import shelve
import sys
import types
from datetime import timedelta

import pytest
from celery.beat import PersistentScheduler
from celery.schedules import schedule

from infrastructure.schedules import ForgivingPersistentScheduler
from rapport.celery import app as celery_app


@pytest.fixture
def schedule_file_from_before_a_move(tmp_path):
    """A schedule file whose entry was pickled by a schedule class's module that is gone now."""
    gone = types.ModuleType("rapport_schedule_that_moved")

    def rebuilt():
        return schedule(timedelta(seconds=1))

    rebuilt.__module__, rebuilt.__qualname__ = gone.__name__, "rebuilt"
    gone.rebuilt = rebuilt

    class Moved:
        def __reduce__(self):
            return (gone.rebuilt, ())

    path = tmp_path / "celerybeat-schedule"
    sys.modules[gone.__name__] = gone
    try:
        with shelve.open(str(path)) as store:
            store["entries"] = {"routing-sweep": Moved()}
    finally:
        del sys.modules[gone.__name__]
    return str(path)


def test_stock_beat_would_not_start_on_it(schedule_file_from_before_a_move):
    with pytest.raises(ModuleNotFoundError):
        PersistentScheduler(app=celery_app, schedule_filename=schedule_file_from_before_a_move)


def test_beat_starts_it_afresh_from_the_settings(schedule_file_from_before_a_move):
    scheduler = ForgivingPersistentScheduler(
        app=celery_app, schedule_filename=schedule_file_from_before_a_move
    )

    assert set(scheduler.schedule) >= set(celery_app.conf.beat_schedule)
    assert scheduler.schedule["routing-sweep"].task == "routing.sweep"


def test_beat_starts_a_new_schedule_file(tmp_path):
    scheduler = ForgivingPersistentScheduler(
        app=celery_app, schedule_filename=str(tmp_path / "celerybeat-schedule")
    )

    assert set(scheduler.schedule) >= set(celery_app.conf.beat_schedule)
