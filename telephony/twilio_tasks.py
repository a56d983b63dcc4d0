"""The Twilio integration's Celery task (registered through CELERY_IMPORTS)."""

from __future__ import annotations

from celery import shared_task

from telephony import twilio_calls
from telephony.tasks import TWILIO_DIAL_AGENT


@shared_task(name=TWILIO_DIAL_AGENT, bind=True, max_retries=None, ignore_result=True)
def dial_agent_by_rest_update(self, call_pk: int, decision_pk: int | None) -> None:
    """Update the live call to dial the agent who accepted it, until Twilio takes it or it is no
    longer wanted (see twilio_calls.dial_agent_by_rest_update)."""
    retry_in = twilio_calls.dial_agent_by_rest_update(call_pk=call_pk, decision_pk=decision_pk)
    if retry_in is not None:
        raise self.retry(countdown=retry_in)
