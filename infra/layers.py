"""Channel layer classes rim configures in settings.CHANNEL_LAYERS."""

import asyncio
import logging
import time
from collections import deque

from channels.exceptions import ChannelFull
from channels.layers import InMemoryChannelLayer
from channels_redis.core import RedisChannelLayer
from channels_redis.pubsub import (
    RedisPubSubChannelLayer,
    RedisPubSubLoopLayer,
    RedisSingleShardConnection,
)
from channels_redis.utils import _wrap_close, decode_hosts
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from infra import metrics

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


class Inbox:
    """One channel's pending messages and its waiting receiver. An idle connection
    holds one of these (a few hundred bytes) instead of an asyncio.Queue with its four
    deques and an Event (about 3 KiB): that is most of what the stock layer costs per
    idle connection."""

    __slots__ = ("messages", "waiter")

    def __init__(self):
        self.messages: deque | None = None
        self.waiter: asyncio.Future | None = None


class ProcessChannelLayer(InMemoryChannelLayer):
    """The in-memory layer of one process, without the costs and the trap of the stock
    InMemoryChannelLayer:

    - it scans every channel and every group on each send and receive, so a push costs
      O(connections); here a send touches only the receiving channel's inbox, and
      stale messages are swept at most every few seconds;
    - it deep-copies each message for each receiver; our events are never mutated, so
      every receiver shares one (the push inside is encoded once per fan-out);
    - it keeps an asyncio.Queue per waiting channel; an Inbox is a tenth of that;
    - a message left unread past `expiry` removed its channel from *every* group, so a
      consumer that fell behind for a minute silently received nothing more, ever.
      Here only the stale messages go (the consumer repairs the hole from the
      database); consumers leave their groups themselves when they disconnect.

    One receiver per channel, as every consumer is.
    """

    sweep_interval = 5.0

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.next_sweep = 0.0
        self.dropped = 0

    async def send(self, channel, message):
        self.require_valid_channel_name(channel)
        self.sweep()
        self.put(channel, message, time.monotonic() + self.expiry)

    async def receive(self, channel):
        inbox = self.channels.get(channel)
        if inbox is None:
            inbox = self.channels[channel] = Inbox()
        try:
            while not inbox.messages:
                inbox.waiter = asyncio.get_running_loop().create_future()
                await inbox.waiter
        finally:
            inbox.waiter = None
            if not inbox.messages and self.channels.get(channel) is inbox:
                # Nothing pending and nobody waiting: forget the channel (it may be
                # gone for good), as the stock layer does.
                del self.channels[channel]
        _, message = inbox.messages.popleft()
        if not inbox.messages:
            inbox.messages = None
            if self.channels.get(channel) is inbox:
                del self.channels[channel]
        return message

    async def group_send(self, group, message):
        self.group_send_now(group, message)

    def group_send_now(self, group, message) -> None:
        """group_send without a coroutine: on the loop, nothing in it waits
        (infra.publish hands events over this way)."""
        self.sweep()
        deadline = time.monotonic() + self.expiry
        for channel in list(self.groups.get(group, ())):
            try:
                self.put(channel, message, deadline)
            except ChannelFull:
                # Counted, and logged once per sweep: under overload a line per
                # dropped push would cost more than the push.
                self.dropped += 1

    def put(self, channel: str, message: dict, deadline: float) -> None:
        inbox = self.channels.get(channel)
        if inbox is None:
            inbox = self.channels[channel] = Inbox()
        if inbox.messages is None:
            inbox.messages = deque()
        # One capacity for every channel: get_capacity() matches patterns per call.
        elif len(inbox.messages) >= self.capacity:
            raise ChannelFull(channel)
        inbox.messages.append((deadline, message))
        if inbox.waiter is not None and not inbox.waiter.done():
            inbox.waiter.set_result(None)

    def sweep(self) -> None:
        """Drop messages nobody read before their deadline (e.g. sent to a channel that
        just closed), and the inboxes they leave empty."""
        now = time.monotonic()
        if now < self.next_sweep:
            return
        self.next_sweep = now + self.sweep_interval
        if self.dropped:
            log.warning("event=layer_channel_full dropped=%d", self.dropped)
            metrics.LAYER_DROPS.labels("channel_full").inc(self.dropped)
            self.dropped = 0
        for channel, inbox in list(self.channels.items()):
            messages = inbox.messages
            if not messages or messages[0][0] >= now:
                continue
            while messages and messages[0][0] < now:
                messages.popleft()
            if not messages:
                inbox.messages = None
                if inbox.waiter is None:
                    del self.channels[channel]


class RimPubSubLayer(RedisPubSubChannelLayer):
    """channels-redis's pub/sub layer (the engine stays channels-redis), made cheaper
    per message where profiles of rim's fan-out found its cost:

    - publishing: a batch of events (infra.publish hands them over together) goes out
      in one pipelined round trip, in order, instead of one PUBLISH at a time under
      the shard's lock, each waiting for its reply;
    - receiving: a message is deserialized once and the same event is given to every
      local channel of the group (rim never mutates events), instead of once per
      channel;
    - each channel waits on a slotted Inbox instead of an asyncio.Queue;
    - the reader blocks on the pub/sub connection instead of polling it with a 0.1 s
      timeout per message.
    """

    def _get_layer(self):
        loop = asyncio.get_running_loop()
        layer = self._layers.get(loop)
        if layer is None:
            layer = self._layers[loop] = RimPubSubLoopLayer(
                *self._args, **self._kwargs, channel_layer=self
            )
            _wrap_close(self, loop)
        return layer

    async def group_send_many(self, events: list[tuple[str, dict]]) -> None:
        await self._get_layer().group_send_many(events)


class RimPubSubLoopLayer(RedisPubSubLoopLayer):
    def __init__(self, *args, capacity: int = 1000, **kwargs):
        super().__init__(*args, **kwargs)
        # Per channel, as ProcessChannelLayer's: a connection that stopped reading
        # must not hold every push sent to it (the stock layer's queues are
        # unbounded); Delivery fills what was dropped from the database.
        self.capacity = capacity
        self._shards = [
            RimShardConnection(host, self) for host in decode_hosts(kwargs.get("hosts"))
        ]

    async def _subscribe_to_channel(self, channel):
        self.channels[channel] = Inbox()
        await self._get_shard(channel).subscribe(channel)

    async def receive(self, channel):
        if channel not in self.channels:
            await self._subscribe_to_channel(channel)
        inbox = self.channels[channel]
        try:
            while not inbox.messages:
                inbox.waiter = asyncio.get_running_loop().create_future()
                await inbox.waiter
        except (asyncio.CancelledError, TimeoutError, GeneratorExit):
            # The consumer is closing (as the stock receive assumes): forget the channel.
            if self.channels.pop(channel, None) is not None:
                try:
                    await self._get_shard(channel).unsubscribe(channel)
                except BaseException:
                    log.exception("event=layer_unsubscribe_failed")
            raise
        finally:
            inbox.waiter = None
        message = inbox.messages.popleft()
        if not inbox.messages:
            inbox.messages = None
        return message

    async def group_send_many(self, events: list[tuple[str, dict]]) -> None:
        by_shard: dict[RimShardConnection, list[tuple[str, bytes]]] = {}
        for group, message in events:
            name = self._get_group_channel_name(group)
            data = self.channel_layer.serialize(message)
            by_shard.setdefault(self._get_shard(name), []).append((name, data))
        for shard, batch in by_shard.items():
            await shard.publish_many(batch)

    def deliver(self, name: str, data: bytes) -> None:
        """A message from Redis for a channel or group of ours: decoded once, then
        shared."""
        targets = [name] if name in self.channels else self.groups.get(name, ())
        message = None
        for channel in targets:
            inbox = self.channels.get(channel)
            if inbox is None:
                continue
            if message is None:
                message = self.channel_layer.deserialize(data)
            if inbox.messages is None:
                inbox.messages = deque()
            elif len(inbox.messages) >= self.capacity:
                metrics.LAYER_DROPS.labels("channel_full").inc()
                continue
            inbox.messages.append(message)
            if inbox.waiter is not None and not inbox.waiter.done():
                inbox.waiter.set_result(None)


class RimShardConnection(RedisSingleShardConnection):
    async def publish_many(self, batch: list[tuple[str, bytes]]) -> None:
        async with self._lock:
            self._ensure_redis()
            pipeline = self._redis.pipeline(transaction=False)
            for name, data in batch:
                pipeline.publish(name, data)
            await pipeline.execute()

    async def _do_receiving(self):
        while True:
            try:
                if self._pubsub and self._pubsub.subscribed:
                    message = await self._pubsub.get_message(
                        ignore_subscribe_messages=True, timeout=None
                    )
                    self._receive_message(message)
                else:
                    await asyncio.sleep(0.1)
            except (asyncio.CancelledError, TimeoutError, GeneratorExit):
                raise
            except BaseException:
                log.exception("event=layer_receive_failed")
                await asyncio.sleep(1)

    def _receive_message(self, message):
        if message is None or message["type"] != "message":
            return
        name = message["channel"]
        if isinstance(name, bytes):
            name = name.decode()
        self.channel_layer.deliver(name, message["data"])
