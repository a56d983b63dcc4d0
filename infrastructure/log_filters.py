"""Log filters that rewrite what a record says before any handler writes it."""

from __future__ import annotations

import logging


class RewritingFilter(logging.Filter):
    """Installed on the log handlers: the message and any traceback of every record pass
    through `rewrite` (masking what must never reach a log). Subclasses say how."""

    def rewrite(self, text: str) -> str:
        raise NotImplementedError

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        rewritten = self.rewrite(message)
        if rewritten != message:
            record.msg = rewritten
            record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.rewrite(record.exc_text)
        return True
