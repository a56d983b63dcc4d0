"""Messages callers leave (docs/telephony.md, "Voicemail"): when nobody of the queue can answer,
or after asking for a call back. A message is customer data (docs/privacy.md): it is kept with the
call and the customer when known, offered as a call back to the caller's last agent first (one
call back per number and queue: a message on a waiting call back joins it), heard only by whoever
may see that call back's card, every listen audited, and erased with the customer.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.db.models import Q

from customers.audit import record_context_access
from customers.models import AccessReason
from infrastructure import broadcast
from routing import callbacks, messages, policy, roles, screens, selectors
from routing.models import Agent, Call, Voicemail
from routing.states import FINAL_STATES, AgentStatus

logger = logging.getLogger(__name__)


def nobody_can_answer(queue_id: int | None) -> bool:
    """Every agent of the queue is offline: no caller of it would be answered while they wait.
    A queue with no agents at all is not said to be so: agents may be given it at any time."""
    if queue_id is None:
        return False
    agents = Agent.objects.filter(queues=queue_id)
    return agents.exists() and not agents.exclude(status=AgentStatus.OFFLINE).exists()


@dataclass(frozen=True)
class Recording:
    """A message as the phone system stored it."""

    sid: str
    url: str
    duration_seconds: int


def message_left(*, telephony_call_id: str, recording: Recording, agent_dials: bool) -> Voicemail:
    """The recording of a message left on the call: kept once (a repeated report changes
    nothing) and offered as a call back. Raises Call.DoesNotExist for a call Rapport does not
    know. A message of no length is nothing to call back about: never called."""
    with transaction.atomic():
        call = Call.objects.select_for_update().get(telephony_call_id=telephony_call_id)
        known = Voicemail.objects.filter(recording_sid=recording.sid).first()
        if known is not None:
            return known
        callback = callbacks.callback_for_message(call, agent_dials=agent_dials)
        try:
            with transaction.atomic():
                voicemail = Voicemail.objects.create(
                    call=call,
                    customer_id=call.customer_id,
                    callback=callback,
                    recording_sid=recording.sid,
                    recording_url=recording.url,
                    duration_seconds=recording.duration_seconds,
                )
        except IntegrityError:
            return Voicemail.objects.get(recording_sid=recording.sid)
        if callback is not None:
            _show_on_the_agents_card(callback.pk)
    logger.info(
        "call %r: a message of %d s, call back %s",
        telephony_call_id,
        recording.duration_seconds,
        callback.pk if callback else None,
    )
    return voicemail


def _show_on_the_agents_card(callback_id: int) -> None:
    """The message came after the call back's try was offered: the card of an agent who has
    taken it is drawn again, and an agent whose offer still rings gets their screen's state
    again (the offer with the message), as a reconnect would draw it."""
    taken = (
        Call.objects.select_related("agent__user", "callback", "queue", "customer")
        .filter(callback_id=callback_id, agent__isnull=False)
        .exclude(state__in=FINAL_STATES)
    )
    for attempt in taken:
        screens.show_call(call=attempt, agent=attempt.agent)
    ringing = selectors.open_offers().filter(call__callback_id=callback_id)
    for agent_id in ringing.values_list("agent_id", flat=True):
        broadcast.send_to_agent(agent_id, messages.agent_state_message(agent_id))


class NotTheirs(Exception):
    """The message is not the user's to hear (answered 404: whether it exists is not theirs)."""


def voicemail_to_hear(*, voicemail_id: int, user) -> Voicemail:
    """The message `user` may hear now, its listen written to the access log: an agent while
    the call back it belongs to rings for them or is their call (the card's rule,
    routing.policy: access ends when the call stops being theirs), a supervisor as they see
    the call backs list."""
    voicemail = Voicemail.objects.filter(pk=voicemail_id).first()
    if voicemail is None:
        raise NotTheirs(voicemail_id)
    call_id = voicemail.call_id
    if not roles.is_supervisor(user):
        agent = selectors.agent_for_user(user, fields=policy.AGENT_FIELDS_SEEING_CALLS)
        if agent is None or voicemail.callback_id is None:
            raise NotTheirs(voicemail_id)
        seen = policy.why_agent_sees_call(agent=agent, among=Q(callback_id=voicemail.callback_id))
        if seen is None:
            raise NotTheirs(voicemail_id)
        call_id = seen[1]
    if voicemail.customer_id is not None:
        record_context_access(
            customer_ids=[voicemail.customer_id],
            user=user,
            reason=AccessReason.VOICEMAIL,
            call_id=call_id,
        )
    else:
        # Nobody known to log against: the log line says who heard which message.
        logger.info("voicemail %s heard by %s", voicemail.pk, user.get_username())
    return voicemail


def erase_voicemails(*, customer_id: int, numbers: list[str]) -> list[str]:
    """The customer is erased: their messages go, and those left from their numbers by a
    caller nobody knew. Returns the recordings' sids, to delete at the phone system."""
    theirs = Voicemail.objects.filter(
        Q(customer_id=customer_id) | Q(customer__isnull=True, call__from_e164__in=numbers)
    )
    sids = list(theirs.values_list("recording_sid", flat=True))
    theirs.delete()
    return sids
