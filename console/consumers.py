from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from console import services
from infrastructure.errors import Refused
from infrastructure.groups import agent_group, session_group
from infrastructure.metrics import SOCKETS_OPEN
from routing import agent_status, offers, roles, status_choices
from routing import selectors as routing_selectors

# Also the code for a session that ended: the console stops reconnecting and says so.
REFUSED = 4403
# Socket messages that carry a caller's context (docs/sockets.md).
CUSTOMER_DATA_MESSAGES = frozenset({"offer", "call", "state", "caller_waiting", "ringing"})


@database_sync_to_async
def _accept(agent_id: int, message: dict[str, Any]) -> None:
    services.accept_offer(offer_id=_offer_id(message), agent_id=agent_id)


@database_sync_to_async
def _decline(agent_id: int, message: dict[str, Any]) -> None:
    offers.decline_offer(offer_id=_offer_id(message), agent_id=agent_id)


@database_sync_to_async
def _set_status(agent_id: int, message: dict[str, Any], user: Any) -> None:
    status_choices.change_status(
        agent_id=agent_id,
        status=message.get("status"),
        changed_by=user,
        not_ready_reason=message.get("not_ready_reason", ""),
    )


@database_sync_to_async
def _ready(agent_id: int, message: dict[str, Any], user: Any) -> None:
    agent_status.ready(agent_id=agent_id, changed_by=user)


def _offer_id(message: dict[str, Any]) -> int:
    offer_id = message.get("offer_id")
    if isinstance(offer_id, bool) or not isinstance(offer_id, int):
        raise Refused("offer_id must be a number.", field="offer_id")
    return offer_id


class AgentConsumer(AsyncJsonWebsocketConsumer):
    """The agent's own stream: their state first (so a reconnect heals), then what happens.
    Their actions (accept, decline, set_status, ready) go to the services; what changes comes
    back through the agent's group like any other change."""

    async def connect(self) -> None:
        self.user = self.scope.get("user")
        self.agent_id = await database_sync_to_async(routing_selectors.agent_id_for_user)(self.user)
        if self.agent_id is None:
            await self.close(code=REFUSED)
            return
        self.session_key = self.scope["session"].session_key
        self.groups_joined = [agent_group(self.agent_id), session_group(self.session_key)]
        for group in self.groups_joined:
            await self.channel_layer.group_add(group, self.channel_name)
        await self.accept()
        self.counted_open = SOCKETS_OPEN.labels(kind="agent")
        self.counted_open.inc()
        snapshot = await database_sync_to_async(services.agent_state_on_connect)(
            agent_id=self.agent_id, user=self.user
        )
        await self.send_json(snapshot)

    async def disconnect(self, code: int) -> None:
        if getattr(self, "counted_open", None) is not None:
            self.counted_open.dec()
            self.counted_open = None
        for group in getattr(self, "groups_joined", []):
            await self.channel_layer.group_discard(group, self.channel_name)

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        kind = content.get("type") if isinstance(content, dict) else None
        # Acting as an agent (taking a call above all) is for an agent still signed in: the
        # offer may have rung before they were taken out of the group.
        if not await self._still_an_agent():
            await self.close(code=REFUSED)
            return
        try:
            if kind == "accept":
                await _accept(self.agent_id, content)
            elif kind == "decline":
                await _decline(self.agent_id, content)
            elif kind == "set_status":
                await _set_status(self.agent_id, content, self.user)
            elif kind == "ready":
                await _ready(self.agent_id, content, self.user)
            else:
                await self.send_json({"type": "error", "message": f"Unknown message {kind!r}."})
        except Refused as refusal:
            await self.send_json({"type": "error", "message": refusal.message})

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        try:
            await super().receive(text_data=text_data, bytes_data=bytes_data)
        except ValueError:
            await self.send_json({"type": "error", "message": "Messages are JSON objects."})

    async def agent_message(self, event: dict) -> None:
        # Offers and calls carry the caller's context: a session that has ended since the
        # socket opened (logged out elsewhere, deactivated), or a person no longer in the agent
        # group, gets nothing more. Status and offer-ended messages carry none and skip the
        # check's query.
        carries_a_caller = event["message"].get("type") in CUSTOMER_DATA_MESSAGES
        if carries_a_caller and not await self._still_an_agent():
            await self.close(code=REFUSED)
            return
        await self.send_json(event["message"])

    async def _still_an_agent(self) -> bool:
        return await roles.still_signed_in_on_loop(
            self.user, self.session_key, role=roles.AGENT_GROUP
        )

    async def session_ended(self, event: dict) -> None:
        await self.close(code=REFUSED)
