"""Channel layer classes rim configures in settings.CHANNEL_LAYERS."""

import asyncio
import logging

from channels_redis.core import RedisChannelLayer
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

log = logging.getLogger("rim.layer")

REDIS_DOWN = (RedisConnectionError, RedisTimeoutError, OSError)


class RetryingRedisChannelLayer(RedisChannelLayer):
    """channels-redis's RedisChannelLayer that survives a Redis outage or restart.

    The stock receive() raises while Redis is unreachable, and channels then ends the
    consumer: every WebSocket of the process closes with 1011 although the database,
    the truth, still works. Here receive() retries with a capped backoff, so sends
    still commit and ack. Group memberships live in Redis, so a restarted Redis has
    forgotten them and open connections would silently receive nothing more: this
    process remembers its own memberships (as RedisPubSubChannelLayer does) and adds
    them again once Redis answers. What the layer lost meanwhile comes from the
    database (gap repair, or the sync at the next Login).
    """

    retry_max_delay = 5.0

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.memberships: dict[str, set[str]] = {}
        self.rejoin_needed = False

    async def receive(self, channel):
        delay = 0.1
        while True:
            try:
                if self.rejoin_needed:
                    await self.rejoin()
                return await super().receive(channel)
            except REDIS_DOWN as exc:
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    # Cancelled (the consumer is closing), and redis-py turned the
                    # cancellation into a read timeout: not an outage, stop here.
                    raise asyncio.CancelledError from exc
                self.rejoin_needed = True
                log.warning(
                    "event=layer_receive_failed error=%s retry_in=%.1f", type(exc).__name__, delay
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.retry_max_delay)

    async def rejoin(self) -> None:
        memberships = [(g, c) for g, channels in self.memberships.items() for c in channels]
        for group, channel in memberships:
            await super().group_add(group, channel)
        self.rejoin_needed = False
        log.warning("event=layer_rejoined memberships=%d", len(memberships))

    async def group_add(self, group, channel):
        self.memberships.setdefault(group, set()).add(channel)
        await super().group_add(group, channel)

    async def group_discard(self, group, channel):
        channels = self.memberships.get(group)
        if channels is not None:
            channels.discard(channel)
            if not channels:
                del self.memberships[group]
        await super().group_discard(group, channel)
