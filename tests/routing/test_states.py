"""The three state machines of routing: an illegal move is an error, never a silent overwrite."""

import pytest

from routing import agent_status
from routing.states import (
    AgentStatus,
    IllegalMove,
    OfferState,
    check_agent_move,
    check_call_move,
    check_offer_move,
)


def test_wrap_up_only_follows_a_call():
    check_agent_move(AgentStatus.BUSY, AgentStatus.WRAP_UP)
    for status in (AgentStatus.AVAILABLE, AgentStatus.BREAK, AgentStatus.OFFLINE):
        with pytest.raises(IllegalMove):
            check_agent_move(status, AgentStatus.WRAP_UP)


def test_an_answered_offer_is_final():
    check_offer_move(OfferState.OFFERED, OfferState.ACCEPTED)
    for final in (OfferState.ACCEPTED, OfferState.DECLINED, OfferState.TIMED_OUT):
        with pytest.raises(IllegalMove):
            check_offer_move(final, OfferState.ACCEPTED)


def test_an_ended_call_stays_ended():
    with pytest.raises(IllegalMove, match="a call cannot move from ended to connected"):
        check_call_move("ended", "connected")


@pytest.mark.django_db
def test_the_router_refuses_to_put_an_agent_into_wrap_up_without_a_call(make_agent):
    dana = make_agent("dana", status="available")

    with pytest.raises(IllegalMove):
        agent_status.set_status(agent=dana, status=AgentStatus.WRAP_UP, reason="test")

    dana.refresh_from_db()
    assert dana.status == AgentStatus.AVAILABLE
