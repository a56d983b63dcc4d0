"""The floor sees the caller's choice: the wall's counts of what held callers chose and of call
backs still to make, the supervisor's list of call backs (`/api/callbacks/`, audited), and the
7-day reunion table's "chose to wait" and "called back by their own agent"."""

from datetime import timedelta

import pytest
from django.utils import timezone

from customers.models import AccessReason, Consent, ContextAccess
from routing.models import Call, Callback, CallbackState, CallerChoice, Voicemail
from routing.states import CallState
from supervisor import reunion, wall

pytestmark = pytest.mark.django_db


_ids = iter(range(1, 10_000))


def a_call(queue, *, last_agent=None, **fields) -> Call:
    now = timezone.now()
    defaults = {
        "state": CallState.ENDED,
        "queued_at": now - timedelta(minutes=5),
        "ended_at": now,
        "from_e164": "+14155550123",
    }
    return Call.objects.create(
        telephony_call_id=f"CA-floor-{next(_ids)}",
        queue=queue,
        last_agent=last_agent,
        **{**defaults, **fields},
    )


def a_callback(requested_on: Call, *, state=CallbackState.WAITING, customer=None, **fields):
    return Callback.objects.create(
        requested_on=requested_on,
        customer=customer,
        queue=requested_on.queue,
        number=requested_on.from_e164,
        from_number="+18005550100",
        place=requested_on.queued_at,
        state=state,
        **fields,
    )


def test_the_wall_counts_what_held_callers_chose_and_the_call_backs_still_to_make(
    queue, make_agent
):
    dana = make_agent("dana")
    now = timezone.now()
    a_call(queue, last_agent=dana, caller_choice=CallerChoice.WAIT, caller_choice_at=now)
    a_call(queue, last_agent=dana, caller_choice=CallerChoice.WAIT, caller_choice_at=now)
    a_call(queue, last_agent=dana, caller_choice=CallerChoice.NEXT_COLLEAGUE)
    asked = a_call(
        queue,
        last_agent=dana,
        caller_choice=CallerChoice.CALLBACK,
        end_reason="callback_requested",
        queued_at=now - timedelta(minutes=9),
    )
    a_callback(asked)
    not_reached = a_call(queue, caller_choice=CallerChoice.CALLBACK, from_e164="+14155550999")
    a_callback(not_reached, state=CallbackState.NOT_REACHED, finished_at=now)

    figures = wall.figures(now)

    day = figures["queues"][0]["today"]
    assert (day["chose_to_wait"], day["chose_next_colleague"], day["asked_for_callback"]) == (
        2,
        1,
        2,
    )
    callbacks = figures["queues"][0]["callbacks"]
    assert (callbacks["pending"], callbacks["not_reached_today"]) == (1, 1)
    assert callbacks["oldest_since"] == asked.queued_at.isoformat()
    assert 9 * 60 <= callbacks["oldest_age_seconds"] < 10 * 60
    assert figures["totals"]["callbacks"] == callbacks
    assert figures["totals"]["today"]["chose_to_wait"] == 2


def test_the_reunion_table_counts_who_chose_to_wait_and_who_their_own_agent_called_back(
    queue, make_agent
):
    dana = make_agent("dana")
    sam = make_agent("sam")
    now = timezone.now()
    # Chose to wait, and reached Dana.
    a_call(queue, last_agent=dana, agent=dana, connected_at=now, caller_choice=CallerChoice.WAIT)
    # Asked for a call back, which Dana made on the second try.
    asked = a_call(queue, last_agent=dana, caller_choice=CallerChoice.CALLBACK)
    by_dana = a_callback(asked, state=CallbackState.REACHED, attempts=2)
    a_call(queue, last_agent=dana, callback=by_dana, end_reason="no-answer")
    a_call(queue, last_agent=dana, callback=by_dana, agent=dana, connected_at=now)
    # Asked for a call back that Sam made.
    other = a_call(
        queue, last_agent=dana, caller_choice=CallerChoice.CALLBACK, from_e164="+14155550111"
    )
    by_sam = a_callback(other, state=CallbackState.REACHED)
    a_call(queue, last_agent=dana, callback=by_sam, agent=sam, connected_at=now)

    table = reunion.reunion_table(now + timedelta(seconds=1))

    total = table["total"]
    # The tries are not callers of their own: three callers, two reunited.
    assert (total["returning"], total["reunited"]) == (3, 2)
    assert (total["chose_to_wait"], total["chose_to_wait_reunited"]) == (1, 1)
    assert total["called_back_by_own_agent"] == 1
    today = reunion.reunion_by_queue(now + timedelta(seconds=1))[queue.id].day_figures()
    assert today["not_reunited"]["callback_not_by_own_agent"] == 1


def test_supervisors_list_call_backs_waiting_or_not_reached_named_as_consent_allows(
    as_supervisor, supervisor, queue, make_agent, make_customer
):
    dana = make_agent("dana")
    maya = make_customer("Maya Chen", consent=Consent.OPEN)
    leo = make_customer("Leo Brandt", phones=["+14155550124"], consent=Consent.CLOSED)
    first = a_call(queue, last_agent=dana, customer=maya)
    maya_callback = a_callback(first, customer=maya, attempts=1)
    message = Voicemail.objects.create(
        call=first,
        customer=maya,
        callback=maya_callback,
        recording_sid="RE" + "1" * 32,
        recording_url="https://api.twilio.com/2010-04-01/Accounts/AC1/Recordings/RE1",
        duration_seconds=23,
    )
    second = a_call(queue, customer=leo, from_e164="+14155550124")
    a_callback(second, customer=leo, state=CallbackState.NOT_REACHED, attempts=3)
    done = a_call(queue, from_e164="+14155550125")
    a_callback(done, state=CallbackState.REACHED)

    response = as_supervisor.get("/api/callbacks/")

    assert response.status_code == 200
    listed = response.json()["callbacks"]
    assert [(row["customer"], row["state"], row["attempts"]) for row in listed] == [
        ("Maya Chen", "waiting", 1),
        ("Anonymous caller", "not_reached", 3),
    ]
    assert listed[0]["last_agent"] == {"id": dana.id, "display_name": "Dana"}
    assert listed[1]["number"] == "+14155550124"
    assert listed[0]["attempts_allowed"] == queue.callback_attempts
    assert listed[0]["message"] == {"id": message.pk, "duration_seconds": 23}
    assert listed[1]["message"] is None
    seen = ContextAccess.objects.filter(user=supervisor, reason=AccessReason.SUPERVISOR)
    assert sorted(seen.values_list("customer_id", "call_id")) == sorted(
        [(maya.id, first.id), (leo.id, second.id)]
    )
    # Seen again: not recorded twice.
    as_supervisor.get("/api/callbacks/")
    assert seen.count() == 2


def test_agents_are_refused_the_call_backs_list(client, make_agent):
    dana = make_agent("dana")
    client.force_login(dana.user)

    assert client.get("/api/callbacks/").status_code == 403
