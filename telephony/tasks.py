"""The telephony app's Celery tasks. Each fetches what it needs and calls the service; each is
idempotent (a message delivered twice does the work once)."""

from __future__ import annotations

from celery import shared_task

from routing.tasks import ON_A_DROPPED_CONNECTION
from telephony import applying, callbacks, connect, instructions, lost_calls
from telephony.signed_events import connect_push
from telephony.twilio import calls as twilio_calls
from telephony.twilio import recordings as twilio_recordings


@shared_task(name=applying.APPLY_RECORDED_EVENT, ignore_result=True, **ON_A_DROPPED_CONNECTION)
def apply_recorded_event(event_id: int) -> None:
    applying.apply_and_route(event_id)


@shared_task(name=applying.APPLY_EVENTS_WAITING_TOO_LONG, ignore_result=True)
def apply_events_waiting_too_long() -> None:
    """Sent by beat while an event's task is lost."""
    applying.apply_events_waiting_too_long()


@shared_task(name=lost_calls.END_SILENT_CALLS, ignore_result=True)
def end_silent_calls() -> None:
    """Sent by beat while a live call has gone silent longer than TELEPHONY_SILENT_CALL_SECONDS."""
    lost_calls.end_silent_calls()


@shared_task(name=connect.PUSH_CALL_CONNECT, bind=True, max_retries=None, ignore_result=True)
def push_call_connect(self, call_pk: int, decision_pk: int | None) -> None:
    """The signed `call.connect`, until a 2xx or until the call ends."""
    retry_in = connect_push.push_call_connect(call_pk=call_pk, decision_pk=decision_pk)
    if retry_in is not None:
        raise self.retry(countdown=retry_in)


@shared_task(name=connect.TWILIO_DIAL_AGENT, bind=True, max_retries=None, ignore_result=True)
def dial_agent_by_rest_update(self, call_pk: int, decision_pk: int | None) -> None:
    """Update the live Twilio call to dial the agent who accepted it, until Twilio takes it or
    it is no longer wanted."""
    retry_in = twilio_calls.dial_agent_by_rest_update(call_pk=call_pk, decision_pk=decision_pk)
    if retry_in is not None:
        raise self.retry(countdown=retry_in)


@shared_task(name=connect.PLACE_CALLBACK, bind=True, max_retries=None, ignore_result=True)
def place_callback(self, call_pk: int, decision_pk: int | None) -> None:
    """Place the call back an agent accepted, until the phone system takes it or it is no
    longer wanted."""
    retry_in = callbacks.place_callback(call_pk=call_pk, decision_pk=decision_pk)
    if retry_in is not None:
        raise self.retry(countdown=retry_in)


@shared_task(name=connect.RESEND_LOST_CONNECTS, ignore_result=True)
def resend_lost_connects() -> None:
    """Sent by beat while a call waits to be connected to the agent who took it."""
    connect.resend_lost_connects()


@shared_task(
    name=instructions.PUSH_CALL_INSTRUCTION, bind=True, max_retries=None, ignore_result=True
)
def push_call_instruction(self, call_pk: int, instruction: str, decision_pk: int | None) -> None:
    """A signed instruction the console asked for, until a 2xx or until it is no longer wanted."""
    retry_in = connect_push.push_call_instruction(
        call_pk=call_pk, instruction=instruction, decision_pk=decision_pk
    )
    if retry_in is not None:
        raise self.retry(countdown=retry_in)


@shared_task(name=instructions.TWILIO_TRANSFER, bind=True, max_retries=None, ignore_result=True)
def transfer_by_rest_update(self, call_pk: int, decision_pk: int) -> None:
    """Update the live Twilio call to dial the colleague who accepted the hand-off."""
    retry_in = twilio_calls.transfer_by_rest_update(call_pk=call_pk, decision_pk=decision_pk)
    if retry_in is not None:
        raise self.retry(countdown=retry_in)


@shared_task(name=instructions.TWILIO_HANG_UP, bind=True, max_retries=10, ignore_result=True)
def hang_up_by_rest_update(self, call_pk: int) -> None:
    """End the live Twilio call, as the agent asked from the console."""
    retry_in = twilio_calls.hang_up_by_rest_update(call_pk=call_pk)
    if retry_in is not None:
        raise self.retry(countdown=retry_in)


@shared_task(name=twilio_recordings.DELETE_RECORDINGS, ignore_result=True)
def delete_twilio_recordings() -> None:
    """Sent once an erasure is committed, and by beat while a recording is still to delete at
    Twilio (Twilio could not be reached)."""
    twilio_recordings.delete_pending_recordings()
