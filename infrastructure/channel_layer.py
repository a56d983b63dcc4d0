"""The channel layer: channels-redis, with a connection pool that waits for a free connection,
and a group send in two round trips.

channels-redis's own pool raises `MaxConnectionsError` the moment more commands run at once than
it has connections: when hundreds of sockets close together (a network blip, a deploy), every
one's `group_discard` asks for a connection at the same moment. This pool lends the same
connections in turn, so a burst only waits milliseconds.

Its `group_send` waits for Redis four times: dropping the group's expired members, reading the
members, dropping the members' expired messages, then the script that queues the message. Every
offer is a group send, so here the first two go in one pipeline and the last two in
another: the same commands, in the same order, on the same connection.

Its receive backs every message up in Redis before handing it on (an `$inflight` copy, written
after the message was popped and deleted again at once), and before each wait it runs a script
that puts such copies back: two more round trips for every message a socket gets, one of them
between the message arriving and the socket getting it. The copy guards against the receiving
coroutine being cancelled while it waits for that write; without the write, nothing is awaited
between the pop and the hand-over, so nothing can be lost there. Here a message goes straight
from the pop to its socket.
"""

from __future__ import annotations

import logging
import time

from channels_redis.core import RedisChannelLayer
from redis import asyncio as aioredis

logger = logging.getLogger(__name__)

# channels-redis 4.3's script, as its group_send runs it: queue the message on each channel that
# is under its capacity.
GROUP_SEND_LUA = """
    local over_capacity = 0
    local current_time = ARGV[#ARGV - 1]
    local expiry = ARGV[#ARGV]
    for i=1,#KEYS do
        if redis.call('ZCOUNT', KEYS[i], '-inf', '+inf') < tonumber(ARGV[i + #KEYS]) then
            redis.call('ZADD', KEYS[i], current_time, ARGV[i])
            redis.call('EXPIRE', KEYS[i], expiry)
        else
            over_capacity = over_capacity + 1
        end
    end
    return over_capacity
"""


class PatientRedisChannelLayer(RedisChannelLayer):
    def create_pool(self, index: int) -> aioredis.ConnectionPool:
        host = dict(self.hosts[index])
        return aioredis.BlockingConnectionPool.from_url(host.pop("address"), **host)

    async def group_send(self, group: str, message: dict) -> None:
        assert self.require_valid_group_name(group), "Group name not valid"
        key = self._group_key(group)
        async with self.connection(self.consistent_hash(group)).pipeline() as pipe:
            pipe.zremrangebyscore(key, min=0, max=int(time.time()) - self.group_expiry)
            pipe.zrange(key, 0, -1)
            _, members = await pipe.execute()
        channel_names = [member.decode("utf8") for member in members]
        by_connection, messages, capacities = self._map_channel_keys_to_connection(
            channel_names, message
        )
        for index, channel_keys in by_connection.items():
            async with self.connection(index).pipeline() as pipe:
                for channel_key in channel_keys:
                    pipe.zremrangebyscore(
                        channel_key, min=0, max=int(time.time()) - int(self.expiry)
                    )
                pipe.eval(
                    GROUP_SEND_LUA,
                    len(channel_keys),
                    *channel_keys,
                    *(messages[channel_key] for channel_key in channel_keys),
                    *(capacities[channel_key] for channel_key in channel_keys),
                    time.time(),
                    self.expiry,
                )
                *_, over_capacity = await pipe.execute()
            if over_capacity > 0:
                logger.info(
                    "%s of %s channels over capacity in group %s",
                    over_capacity,
                    len(channel_names),
                    group,
                )

    async def _brpop_with_clean(self, index, channel, timeout):
        result = await self.connection(index).bzpopmin(channel, timeout=timeout)
        return None if result is None else result[1]

    async def _clean_receive_backup(self, index, channel):
        """No backup was made (`_brpop_with_clean`): nothing to clean."""
