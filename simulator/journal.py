"""A line's calls in flight, written down so that the next run hangs up what a cut-off run left.

`up` stops the web server and the simulator at the same moment, so the simulator's last
`call.ended` events may find nobody listening, and a killed simulator sends none at all: those
calls would wait in Rapport forever, and an agent who accepts one stays busy with a caller
nobody will connect. The journal is a JSON list of the call ids this line has rung and not yet
been able to end, rewritten on each change; the next run using it ends them first thing.

One simulator at a time may use a journal: it holds an exclusive lock beside it.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import IO


class JournalInUse(Exception):
    pass


class CallJournal:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock: IO[str] | None = None

    def open(self) -> list[str]:
        """Lock the journal and return the calls a previous run left in flight."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock = open(self.path.with_name(self.path.name + ".lock"), "w")  # noqa: SIM115
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as locked:
            lock.close()
            raise JournalInUse(f"another simulator is using {self.path}") from locked
        self._lock = lock
        try:
            leftovers = json.loads(self.path.read_text())
        except (FileNotFoundError, ValueError):
            return []
        return [call_id for call_id in leftovers if isinstance(call_id, str)]

    def record(self, call_ids: Iterable[str]) -> None:
        # Written aside and renamed over: a run killed mid-write leaves the previous list whole.
        staged = self.path.with_name(self.path.name + ".new")
        staged.write_text(json.dumps(sorted(call_ids)))
        os.replace(staged, self.path)

    def close(self) -> None:
        if self._lock is not None:
            self._lock.close()
            self._lock = None
