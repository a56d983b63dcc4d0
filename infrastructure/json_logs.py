"""LOG_FORMAT=json: each record one JSON object on a line (python-json-logger), with what the
plain format says as fields, and `call_id` and `agent_id` (`log_fields.call_fields`)."""

from __future__ import annotations

import logging

from pythonjsonlogger.json import JsonFormatter


class JsonLinesFormatter(JsonFormatter):
    """python-json-logger's formatter, but a traceback is written as the handler's filters left
    it (`log_filters.RewritingFilter` masks card numbers and tokens in `exc_text`): the library
    would format the exception afresh from `exc_info`, unmasked."""

    def format(self, record: logging.LogRecord) -> str:
        if not (record.exc_info and record.exc_text):
            return super().format(record)
        exc_info, record.exc_info = record.exc_info, None
        try:
            return super().format(record)
        finally:
            record.exc_info = exc_info
