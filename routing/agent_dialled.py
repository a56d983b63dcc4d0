"""A call back no phone system places (`Callback.agent_dials`): the agent who accepted it dials
the number their console shows, then says how it went. Apart from routing.callbacks, which the
router's sweep imports, as this ends the try through the router."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from routing import callbacks, calls, router
from routing.models import Call
from routing.states import CallState


class NotTheirCallBack(Exception):
    """The agent has no accepted try of this call back to say how it went."""


def agent_called_back(*, agent_id: int, callback_id: int, reached: bool) -> Call:
    """The agent dialled the customer themselves (`Callback.agent_dials`) and says how it went:
    reached (the try was their conversation: wrap-up follows) or not answered (tried again
    later, like a try a phone system reports unanswered)."""
    with transaction.atomic():
        call = (
            Call.objects.select_for_update(of=("self",))
            .select_related("queue", "callback")
            .filter(
                callback_id=callback_id,
                callback__agent_dials=True,
                agent_id=agent_id,
                state__in=[CallState.QUEUED, CallState.OFFERED],
            )
            .first()
        )
        if call is None:
            raise NotTheirCallBack(callback_id)
        now = timezone.now()
        if reached:
            call.connected_at = now
        calls.move_call(call, CallState.ENDED, now=now)
        call.ended_at = now
        call.end_reason = "completed" if reached else "no-answer"
        call.save(
            update_fields=["connected_at", "state", "state_changed_at", "ended_at", "end_reason"]
        )
        router.call_ended(call, reason="called_back")
        callbacks.attempt_ended(call)
        return call
