"""`call.callback_requested` from a phone system of our own format, signed with
`standardwebhooks` and applied by the worker's task: the call ends as a call back requested, not
abandoned, and the call back waits at the caller's place. With no phone system to place it (no
control URL, not a Twilio call) the agent dials the number their card shows and says how it went;
with a control URL Rapport pushes a signed `call.dial`."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth.models import User
from rest_framework.test import APIClient
from standardwebhooks import Webhook

from console import services as console_services
from routing import agent_status, router
from routing.models import Agent, Call, Callback, CallbackState, Offer
from routing.states import AgentStatus, CallState, OfferState
from telephony import callbacks as telephony_callbacks
from telephony import connect
from telephony.models import ConnectAttempt
from tests.support.routing import tasks_published
from tests.support.telephony import TelephonyControl, event, ringing
from tests.telephony.conftest import MAYA

pytestmark = pytest.mark.django_db(transaction=True)


def asks_for_a_call_back(phone_system, call_id: str = "CA-maya") -> Callback:
    assert phone_system.post(ringing(call_id, **{"from": MAYA})).status_code == 202
    router.route_call(Call.objects.get(telephony_call_id=call_id).pk)
    assert phone_system.post(event("call.callback_requested", call_id)).status_code == 202
    # The phone system's own end afterwards changes nothing.
    phone_system.post(event("call.ended", call_id, reason="abandoned"))
    call = Call.objects.get(telephony_call_id=call_id)
    assert (call.state, call.end_reason) == (CallState.ENDED, "callback_requested")
    return Callback.objects.get(requested_on=call)


def accepted_by(agent: Agent, callback: Callback, sent) -> tuple[Call, dict]:
    agent_status.set_status(agent=Agent.objects.get(pk=agent.pk), status="available", reason="t")
    router.offer_next_call(agent.pk)
    attempt = Call.objects.filter(callback=callback).latest("id")
    offer = Offer.objects.get(call=attempt, agent=agent, state=OfferState.OFFERED)
    card = [m for agent_id, m in sent if agent_id == agent.pk and m["type"] == "offer"][-1]
    with tasks_published() as published:
        console_services.accept_offer(offer_id=offer.id, agent_id=agent.pk)
    return attempt, {"card": card, "published": published}


def as_agent(agent: Agent) -> APIClient:
    client = APIClient()
    client.force_authenticate(agent.user)
    return client


def test_without_a_phone_system_to_place_it_the_agent_dials_and_says_how_it_went(
    phone_system, settings, dana, maya, queue, sent
):
    settings.TELEPHONY_CONTROL_URL = ""
    queue.callback_retry_seconds = 0
    queue.save()
    callback = asks_for_a_call_back(phone_system)
    assert callback.agent_dials is True

    attempt, seen = accepted_by(dana, callback, sent)

    assert seen["published"] == []
    assert seen["card"]["callback"]["agent_dials"] is True
    assert seen["card"]["callback"]["number"] == MAYA
    # Closed consent: the card shows what the call needs, no history.
    assert seen["card"]["caller"]["customer"]["history_hidden"] is True
    client = as_agent(dana)
    url = f"/api/callbacks/{callback.pk}/called-back/"
    assert client.post(url, {}, format="json").status_code == 400
    someone_else = User.objects.create_user("lee")
    assert APIClient().post(url, {"reached": True}, format="json").status_code in (401, 403)
    intruder = APIClient()
    intruder.force_authenticate(someone_else)
    assert intruder.post(url, {"reached": True}, format="json").status_code == 403

    assert client.post(url, {"reached": False}, format="json").status_code == 200
    attempt.refresh_from_db()
    assert (attempt.state, attempt.end_reason) == (CallState.ENDED, "no-answer")
    callback.refresh_from_db()
    assert callback.state == CallbackState.WAITING
    assert Agent.objects.get(pk=dana.pk).status == AgentStatus.AVAILABLE
    # Again after the queue's wait, at the same place: Dana reaches Maya this time.
    assert router.sweep()["callbacks_retried"] == 1
    second = Call.objects.filter(callback=callback).latest("id")
    router.route_call(second.pk)
    offer = Offer.objects.get(call=second, agent=dana, state=OfferState.OFFERED)
    console_services.accept_offer(offer_id=offer.id, agent_id=dana.pk)
    assert client.post(url, {"reached": True}, format="json").status_code == 200

    callback.refresh_from_db()
    assert (callback.state, callback.attempts) == (CallbackState.REACHED, 2)
    assert Agent.objects.get(pk=dana.pk).status == AgentStatus.WRAP_UP
    assert client.post(url, {"reached": True}, format="json").status_code == 404


def test_with_a_control_url_rapport_pushes_a_signed_call_dial(
    phone_system, settings, webhook_secret, dana, maya, queue, sent, control_url
):
    settings.TELEPHONY_CONTROL_URL = control_url
    callback = asks_for_a_call_back(phone_system)
    assert callback.agent_dials is False

    attempt, seen = accepted_by(dana, callback, sent)
    decision = Offer.objects.get(call=attempt, agent=dana).decision
    assert seen["published"] == [(connect.PLACE_CALLBACK, (attempt.pk, decision.pk))]
    assert telephony_callbacks.place_callback(call_pk=attempt.pk, decision_pk=None) is None

    headers, body = TelephonyControl.received[-1]
    Webhook(webhook_secret).verify(body, {name.lower(): value for name, value in headers.items()})
    assert json.loads(body) == {
        "type": "call.dial",
        "call_id": attempt.telephony_call_id,
        "callback_id": callback.pk,
        "to": MAYA,
        "from": "+18005550100",
        "agent": "1001",
    }
    assert ConnectAttempt.objects.filter(call=attempt, status_code=200).exists()

    # The phone system reports the call it placed under the try's id.
    phone_system.post(event("call.answered", attempt.telephony_call_id, agent="1001"))
    phone_system.post(event("call.ended", attempt.telephony_call_id, reason="completed"))
    callback.refresh_from_db()
    assert callback.state == CallbackState.REACHED
