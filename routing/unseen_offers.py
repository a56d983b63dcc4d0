"""Offers whose screen message may have been lost. An offer's `offer` message goes out after its
transaction commits, from a thread of the process that made it (infrastructure.broadcast): a
worker killed in between (`kill -9`, the OOM killer) commits the offer and loses its message, and
the offer would ring on no screen until it timed out and made its agent not ready. The sweep
asks the agent's sockets, once per offer, whether they showed it; one that did not sends its
agent's state again (console.consumers), as a reconnect would."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.core.cache import cache

from infrastructure import broadcast
from routing import selectors

# A message is on the agent's screen within milliseconds; one that has not arrived in this
# long is not coming.
ASK_AFTER = timedelta(seconds=2)
# Offers as old as this are asked about again by no sweep: the window covers a few of beat's
# sweeps (one a second) in case one is late, and each offer is asked once (`_first_time`).
_ASK_WITHIN = timedelta(seconds=5)


def ask_screens_about_ringing_offers(*, now: datetime) -> int:
    """Ask the sockets of each agent with an offer ringing for `ASK_AFTER` whether they show
    it; how many offers were asked about."""
    ringing = (
        selectors.open_offers()
        .filter(offered_at__lte=now - ASK_AFTER, offered_at__gt=now - ASK_AFTER - _ASK_WITHIN)
        .values_list("id", "agent_id", "offered_at")[:200]
    )
    asked = 0
    for offer_id, agent_id, offered_at in ringing:
        if _first_time(offer_id, offered_at):
            broadcast.ask_agent_screens_about_offer(agent_id=agent_id, offer_id=offer_id)
            asked += 1
    return asked


def _first_time(offer_id: int, offered_at: datetime) -> bool:
    # Shared by every sweeper (a second beat started by mistake asks nothing twice); the time
    # tells apart offers of a database restored or made again under the same ids.
    key = f"rapport:offer-screens-asked:{offer_id}:{offered_at.timestamp()}"
    return cache.add(key, 1, timeout=3600)
