"""Handing work to the router's Celery tasks. The message only makes it happen at once: the
decision rows say what is still to do, and the sweeper redoes routing whose message was lost
(never published because the broker was away, or lost with a killed worker)."""

from __future__ import annotations

from infrastructure import dispatch

ROUTE_CALL = "routing.route_call"
OFFER_NEXT_CALL = "routing.offer_next_call"


def request_routing(*, call_id: int) -> None:
    """The call waits in its queue: the router looks for an agent once this commits."""
    dispatch.publish_on_commit(ROUTE_CALL, call_id)


def request_offer_for_agent(*, agent_id: int) -> None:
    """`agent_id` is free: the router looks for a waiting caller for them once this commits."""
    dispatch.publish_on_commit(OFFER_NEXT_CALL, agent_id)
