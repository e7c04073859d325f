"""Channel layer classes rim configures in settings.CHANNEL_LAYERS."""

import asyncio
import logging

from channels_redis.core import RedisChannelLayer
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

log = logging.getLogger("rim.layer")


class RetryingRedisChannelLayer(RedisChannelLayer):
    """channels-redis's RedisChannelLayer whose receive() waits out a Redis outage.

    The stock receive() raises while Redis is unreachable, and channels then ends the
    consumer: every WebSocket of the process closes with 1011 although the database,
    the truth, still works. Retrying keeps the connections up (sends still commit and
    ack); what the layer lost meanwhile comes from the database (gap repair, or the
    sync at the next Login).
    """

    retry_max_delay = 5.0

    async def receive(self, channel):
        delay = 0.1
        while True:
            try:
                return await super().receive(channel)
            except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
                log.warning(
                    "event=layer_receive_failed error=%s retry_in=%.1f", type(exc).__name__, delay
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.retry_max_delay)
