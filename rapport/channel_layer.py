"""The channel layer: channels-redis, with a connection pool that waits for a free connection.

channels-redis's own pool raises `MaxConnectionsError` the moment more commands run at once than
it has connections: when hundreds of sockets close together (a network blip, a deploy), every
one's `group_discard` asks for a connection at the same moment. This pool lends the same
connections in turn, so a burst only waits milliseconds.
"""

from __future__ import annotations

from channels_redis.core import RedisChannelLayer
from redis import asyncio as aioredis


class PatientRedisChannelLayer(RedisChannelLayer):
    def create_pool(self, index: int) -> aioredis.ConnectionPool:
        host = dict(self.hosts[index])
        return aioredis.BlockingConnectionPool.from_url(host.pop("address"), **host)
