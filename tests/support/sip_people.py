"""The people of the PBX scenarios (tests/system/test_pbx.py, test_softphone.py): the queue's
number, Maya who rings it, agents by extension, and Maya's earlier call that makes the route
hint name her agent."""

from __future__ import annotations

from datetime import timedelta

from django.contrib.auth.models import Group, User
from django.utils import timezone

from customers.models import Customer, PhoneNumber
from routing.models import Agent, Call, Queue
from routing.states import AgentStatus, CallState

QUEUE_NUMBER = "+18005550100"
MAYA = "+14155550123"
EARLIER_CALL = "maya-two-days-ago"


def agent(name: str, extension: str, queue: Queue, *, status=AgentStatus.AVAILABLE) -> Agent:
    """An agent of `queue` whose telephony identity is `extension`, password "pw-<name>"."""
    user = User.objects.create_user(username=name, password="pw-" + name)
    user.groups.add(Group.objects.get_or_create(name="agent")[0])
    the_agent = Agent.objects.create(
        user=user, display_name=name.title(), telephony_identity=extension, status=status
    )
    the_agent.queues.set([queue])
    return the_agent


def spoke_with(number: str, the_agent: Agent, queue: Queue) -> None:
    """`number`'s caller, Maya, talked with `the_agent` two days ago: the route hint names them."""
    maya = Customer.objects.create(name="Maya Chen")
    PhoneNumber.objects.create(customer=maya, number=number)
    at = timezone.now() - timedelta(days=2)
    Call.objects.create(
        telephony_call_id=EARLIER_CALL,
        customer=maya,
        agent=the_agent,
        queue=queue,
        state=CallState.ENDED,
        connected_at=at,
        ended_at=at + timedelta(minutes=3),
    )
