"""A refused action: what a person or a peer system asked for cannot happen, and why.

Raised by the services of every app and answered by every adapter in its own terms: the API
with the error's HTTP status (`infrastructure.api_errors`), an agent's socket with an error
message. The message is shown to whoever tried; `field` names what was wrong with their request.
"""

from __future__ import annotations


class Refused(Exception):
    """Not now: the thing exists and the request is well formed, but its state forbids it."""

    http_status = 409

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class Invalid(Refused):
    """A value that can never work."""

    http_status = 400


class Forbidden(Refused):
    """Not for this person."""

    http_status = 403


class NotFound(Refused):
    """No such thing."""

    http_status = 404


class Gone(Refused):
    """It was there, and is no more (erased)."""

    http_status = 410
