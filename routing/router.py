"""The router: who gets offered which call. (Being built for issue #4; these are its entry points.)

The telephony webhook calls these inside its transaction; each schedules its own work on commit.
"""

from routing.models import Call


def call_arrived(call: Call) -> None:
    """A new call reached its queue (state `queued`): route it."""


def call_answered(call: Call) -> None:
    """The telephony system connected `call` to `call.agent`."""


def call_ended(call: Call) -> None:
    """The call ended or was abandoned: withdraw any offer, start the agent's wrap-up."""


def route_call(call_id: int) -> None:
    """Celery entry point: offer the call to the right agent, or leave it waiting."""
