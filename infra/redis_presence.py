"""Presence across every process of a deployment, kept in Redis (PROTOCOL.md §6.2).

infra.presence.tracker() uses this when REDIS_URL is set. It has MemoryPresence's
interface and meaning, for all the processes on one Redis together: a user is online
while at least one of its connections is logged in anywhere; going online is reported
once, by the process where it happened; going offline once, by whichever live process
claims it, after RIM_PRESENCE_GRACE seconds with no connection anywhere. A process
that dies (kill -9) takes its users offline the same way, reported by another one.

Data layout, under P = "<RIM_LAYER_PREFIX>:presence" (times: Redis's clock, in ms):

    P:procs      zset  process id → its last heartbeat
    P:held:<id>  set   users with at least one logged-in connection on that process
    P:users      hash  uid → how many processes hold it; present while the user is
                       online, 0 during its grace period, removed when it goes offline
    P:leaving    zset  uid → when its last connection anywhere closed (last seen)

Cost. Each process counts its own connections in memory; Redis hears of a user only
when its first connection on this process opens or its last one closes, in batches,
one script call per batch (APPLY). Every `refresh` seconds each process makes one
script call (TICK): its heartbeat; the reaping of processes whose heartbeat is older
than `dead_after` (their users start leaving at that heartbeat); and the claim of users
who left more than `grace` ago, which this process then reports offline. Work
proportional to users happens only on those transitions and on a process's death;
pushes never touch Redis. Both scripts are atomic, so no transition is claimed twice.

A process that finds itself missing from P:procs (reaped after a stall longer than
`dead_after`, or Redis lost its data) registers again and sends all its users anew.

Best effort, like the layer: nothing here waits on Redis on behalf of a connection.
connected()/disconnected() change memory and wake a background task; every Redis call
is bounded by `timeout`, and failures are logged once and retried. A reply lost to a
timeout after Redis did the work loses that one report (the state in Redis stays
right). The scripts touch the reaped processes' keys by name: one Redis, not a cluster.
"""

import asyncio
import logging
import os
import socket
import uuid
from datetime import UTC, datetime

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.commands.core import AsyncScript
from redis.exceptions import RedisError

from infra.presence import OnChange

log = logging.getLogger("rim.presence")

REDIS_TROUBLE = (RedisError, OSError, TimeoutError)
# Users sent to Redis in one APPLY call.
BATCH = 500
# Dead processes reaped in one TICK call (others at the next refresh), and users claimed
# offline in one (others in another call at once).
REAP_LIMIT = 10
CLAIM_LIMIT = 1000
# The keys expire when no process of the deployment has refreshed them for this long
# (a deployment shut down for good, a finished test run).
KEY_TTL_MS = 86_400_000

_NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"""

# KEYS: procs, users, leaving, held. ARGV: process id, then (uid, 1 held | 0 not) pairs.
# Returns {1 if the process was not registered, uids that went online}.
APPLY = (
    _NOW
    + """
local procs, users, leaving, held = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local fresh = redis.call('ZADD', procs, now, ARGV[1])
local went_online = {}
for i = 2, #ARGV, 2 do
  local uid = ARGV[i]
  if ARGV[i + 1] == '1' then
    if redis.call('SADD', held, uid) == 1 then
      if redis.call('HINCRBY', users, uid, 1) == 1 then
        -- back within the grace period, or really new
        if redis.call('ZREM', leaving, uid) == 0 then
          table.insert(went_online, uid)
        end
      end
    end
  elseif redis.call('SREM', held, uid) == 1 then
    if redis.call('HINCRBY', users, uid, -1) <= 0 then
      redis.call('HSET', users, uid, 0)
      redis.call('ZADD', leaving, now, uid)
    end
  end
end
return {fresh, went_online}
"""
)

# KEYS: procs, users, leaving, held. ARGV: process id, dead_after ms, grace ms, prefix
# of the held keys, key TTL ms, REAP_LIMIT, CLAIM_LIMIT. Returns {1 if the process was
# not registered, {uid, left at, uid, left at, ...} of the users it claimed offline}.
TICK = (
    _NOW
    + """
local procs, users, leaving = KEYS[1], KEYS[2], KEYS[3]
local fresh = redis.call('ZADD', procs, now, ARGV[1])
local dead = redis.call('ZRANGEBYSCORE', procs, '-inf', now - tonumber(ARGV[2]),
                        'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[6]))
for i = 1, #dead, 2 do
  local held = ARGV[4] .. dead[i]
  for _, uid in ipairs(redis.call('SMEMBERS', held)) do
    if redis.call('HINCRBY', users, uid, -1) <= 0 then
      redis.call('HSET', users, uid, 0)
      redis.call('ZADD', leaving, dead[i + 1], uid)
    end
  end
  redis.call('DEL', held)
  redis.call('ZREM', procs, dead[i])
end
local gone = redis.call('ZRANGEBYSCORE', leaving, '-inf', now - tonumber(ARGV[3]),
                        'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[7]))
for i = 1, #gone, 2 do
  redis.call('ZREM', leaving, gone[i])
  redis.call('HDEL', users, gone[i])
end
for _, key in ipairs(KEYS) do
  redis.call('PEXPIRE', key, ARGV[5])
end
return {fresh, gone}
"""
)


class RedisPresence:
    """The presence of the deployment's users, as seen from one process."""

    def __init__(
        self,
        url: str,
        *,
        prefix: str,
        grace: float,
        timeout: float = 5.0,
        process: str | None = None,
        refresh: float | None = None,
    ):
        self.url = url
        self.grace = grace
        self.timeout = timeout
        self.refresh = refresh if refresh is not None else min(max(grace / 4, 0.05), 5.0)
        # Missing heartbeats for a whole grace period: a process stalled that long has
        # its users shown offline (it sends them again when it wakes).
        self.dead_after = max(grace, 3 * self.refresh)
        self.process = process or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        base = f"{prefix}:presence"
        self.held_prefix = f"{base}:held:"
        self.keys = [f"{base}:procs", f"{base}:users", f"{base}:leaving"]
        self.keys.append(self.held_prefix + self.process)
        # uid → logged-in connections in this process
        self.connections: dict[int, int] = {}
        # users whose being held by this process Redis may not know yet
        self.unsent: set[int] = set()
        self.on_change: OnChange | None = None
        self.failing = False
        self.loop: asyncio.AbstractEventLoop | None = None
        self.redis: Redis | None = None
        self.apply: AsyncScript | None = None
        self.refresh_script: AsyncScript | None = None
        self.sender: asyncio.Task | None = None
        self.ticker: asyncio.Task | None = None

    def start(self, on_change: OnChange) -> None:
        self.on_change = on_change
        self.attach()

    def connected(self, uid: int) -> None:
        count = self.connections.get(uid, 0)
        self.connections[uid] = count + 1
        if count == 0:
            self.send({uid})

    def disconnected(self, uid: int) -> None:
        count = self.connections.get(uid, 0)
        if count > 1:
            self.connections[uid] = count - 1
        elif count == 1:
            del self.connections[uid]
            self.send({uid})

    async def online(self, uids: set[int]) -> set[int]:
        here = uids & self.connections.keys()
        asked = sorted(uids - here)
        if not asked:
            return here
        try:
            async with asyncio.timeout(self.timeout):
                if self.loop is asyncio.get_running_loop():
                    counts = await self.redis.hmget(self.keys[1], asked)
                else:
                    # Outside the server's loop (a test's or a command's async_to_sync).
                    async with self.client() as redis:
                        counts = await redis.hmget(self.keys[1], asked)
        except REDIS_TROUBLE as exc:
            self.trouble(exc)
            return here
        return here | {uid for uid, count in zip(asked, counts, strict=True) if count is not None}

    async def close(self) -> None:
        """Stop refreshing and sending, and tell Redis nothing: the other processes
        take this one's users offline as if it had died."""
        tasks = [task for task in (self.sender, self.ticker) if task is not None]
        for task in tasks:
            task.cancel()
        if tasks:
            # Bounded: closing a connection to a Redis that stopped answering can hang.
            await asyncio.wait(tasks, timeout=self.timeout)
        self.loop = self.redis = self.sender = self.ticker = None

    # -- on the event loop, in the background ------------------------------------------

    def client(self) -> Redis:
        # One immediate retry, on a fresh connection (after a Redis restart every pooled
        # one is dead); more would only delay the next tick's own retry.
        return Redis.from_url(
            self.url,
            socket_timeout=self.timeout,
            socket_connect_timeout=self.timeout,
            retry=Retry(NoBackoff(), 1),
        )

    def attach(self) -> None:
        """Work on the running loop: the server's (each test may bring a new one)."""
        loop = asyncio.get_running_loop()
        if loop is self.loop:
            return
        self.loop = loop
        self.redis = self.client()
        self.apply = self.redis.register_script(APPLY)
        self.refresh_script = self.redis.register_script(TICK)
        self.unsent.update(self.connections)
        self.sender = None
        self.ticker = loop.create_task(self.tick_forever(loop, self.redis))

    def send(self, uids: set[int]) -> None:
        self.attach()
        self.unsent.update(uids)
        if self.sender is None or self.sender.done():
            self.sender = self.loop.create_task(self.send_unsent(self.loop))

    async def send_unsent(self, loop: asyncio.AbstractEventLoop) -> None:
        """Tell Redis which of the changed users this process holds, batch by batch,
        until none is left; report those who went online."""
        while self.unsent and self.loop is loop:
            batch = [self.unsent.pop() for _ in range(min(len(self.unsent), BATCH))]
            args: list = [self.process]
            for uid in batch:
                args += [uid, int(uid in self.connections)]
            try:
                async with asyncio.timeout(self.timeout):
                    fresh, went_online = await self.apply(keys=self.keys, args=args)
            except REDIS_TROUBLE as exc:
                self.unsent.update(batch)
                self.trouble(exc)
                await asyncio.sleep(self.refresh)
                continue
            self.recovered()
            if fresh:
                self.registered()
            for uid in went_online:
                self.report(int(uid), True, None)

    async def tick_forever(self, loop: asyncio.AbstractEventLoop, redis: Redis) -> None:
        try:
            while self.loop is loop:
                if not await self.tick():
                    await asyncio.sleep(self.refresh)
        finally:
            try:
                async with asyncio.timeout(self.timeout):
                    await redis.aclose()
            except REDIS_TROUBLE as exc:
                log.warning("event=presence_close_failed error=%r", exc)

    async def tick(self) -> bool:
        """Refresh this process's heartbeat, reap the dead, report the users it claims
        offline. True if there may be more to claim right away."""
        args = [
            self.process,
            round(self.dead_after * 1000),
            round(self.grace * 1000),
            self.held_prefix,
            KEY_TTL_MS,
            REAP_LIMIT,
            CLAIM_LIMIT,
        ]
        try:
            async with asyncio.timeout(self.timeout):
                fresh, gone = await self.refresh_script(keys=self.keys, args=args)
        except REDIS_TROUBLE as exc:
            self.trouble(exc)
            return False
        self.recovered()
        if fresh:
            self.registered()
        for uid, left_at in zip(gone[::2], gone[1::2], strict=True):
            last_seen = datetime.fromtimestamp(float(left_at) / 1000, UTC)
            self.report(int(uid), False, last_seen)
        return len(gone) == 2 * CLAIM_LIMIT

    def registered(self) -> None:
        """Redis did not know this process (its first call, or it was reaped, or Redis
        lost its data): send it all the users it holds (those it has are no-ops)."""
        log.info(
            "event=presence_registered process=%s users=%d", self.process, len(self.connections)
        )
        if self.connections:
            self.send(set(self.connections))

    def report(self, uid: int, online: bool, last_seen: datetime | None) -> None:
        if self.on_change is None:
            return
        try:
            self.on_change(uid, online, last_seen)
        except Exception:
            # The refresh must go on: without it, the others would reap this process.
            log.exception("event=presence_report_failed uid=%s", uid)

    def trouble(self, exc: BaseException) -> None:
        if not self.failing:
            self.failing = True
            log.warning("event=presence_redis_failed error=%r", exc)

    def recovered(self) -> None:
        if self.failing:
            self.failing = False
            log.warning("event=presence_redis_recovered")
