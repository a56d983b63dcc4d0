from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from routing import selectors as routing_selectors
from routing.groups import agent_group


class AgentConsumer(AsyncJsonWebsocketConsumer):
    """The agent's own stream: their state first (so a reconnect heals), then what happens."""

    async def connect(self) -> None:
        user = self.scope.get("user")
        self.agent_id = await database_sync_to_async(routing_selectors.agent_id_for_user)(user)
        if self.agent_id is None:
            await self.close(code=4403)
            return
        self.group = agent_group(self.agent_id)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        snapshot = await database_sync_to_async(routing_selectors.agent_snapshot)(self.agent_id)
        await self.send_json(snapshot)

    async def disconnect(self, code: int) -> None:
        if getattr(self, "group", None):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def agent_message(self, event: dict) -> None:
        await self.send_json(event["message"])
