"""Who is online, across every process of a deployment (PROTOCOL.md §6.2).

A user is online while at least one of its connections is logged in, anywhere. Going
online is reported at once; going offline only after RIM_PRESENCE_GRACE seconds with
no connection, so that a reconnect is not seen. The tracker reports both through the
callback given to `start` (the domain decides who is told). It knows nothing of
groups or pushes.

Without Redis there is one process, and MemoryPresence counts its connections in
memory; with Redis, infra.redis_presence.RedisPresence does the same for every process
of the deployment. Both have one interface: start(on_change), connected(uid) and
disconnected(uid) on the event loop without waiting, and `await online(uids)`.
"""

import asyncio
import functools
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime

from django.conf import settings

log = logging.getLogger("rim.presence")

# on_change(uid, online, last_seen): called on the event loop.
OnChange = Callable[[int, bool, datetime | None], None]


class MemoryPresence:
    """The presence of one process's users."""

    def __init__(self, grace: float, clock=time.monotonic):
        self.grace = grace
        self.clock = clock
        self.connections: dict[int, int] = {}
        self.online_users: set[int] = set()
        # uid → (monotonic time of its last disconnect, wall-clock time of it)
        self.leaving: dict[int, tuple[float, datetime]] = {}
        self.on_change: OnChange | None = None
        self.sweeper: asyncio.TimerHandle | None = None

    def start(self, on_change: OnChange) -> None:
        self.on_change = on_change

    def connected(self, uid: int) -> None:
        self.connections[uid] = self.connections.get(uid, 0) + 1
        self.leaving.pop(uid, None)
        if uid not in self.online_users:
            self.online_users.add(uid)
            self.report(uid, True, None)

    def disconnected(self, uid: int) -> None:
        left = self.connections.get(uid, 0) - 1
        if left > 0:
            self.connections[uid] = left
            return
        self.connections.pop(uid, None)
        self.leaving[uid] = (self.clock(), datetime.now(UTC))
        self.schedule_sweep()

    def schedule_sweep(self) -> None:
        if self.sweeper is None:
            loop = asyncio.get_running_loop()
            self.sweeper = loop.call_later(min(self.grace, 1.0) or 0.01, self.sweep)

    def sweep(self) -> None:
        self.sweeper = None
        now = self.clock()
        for uid, (since, when) in list(self.leaving.items()):
            if now - since >= self.grace:
                del self.leaving[uid]
                self.online_users.discard(uid)
                self.report(uid, False, when)
        if self.leaving:
            self.schedule_sweep()

    async def online(self, uids: set[int]) -> set[int]:
        return uids & self.online_users

    def report(self, uid: int, online: bool, last_seen: datetime | None) -> None:
        if self.on_change is not None:
            self.on_change(uid, online, last_seen)


@functools.cache
def tracker():
    """The process's presence tracker: the deployment's in Redis if there is one."""
    if settings.REDIS_URL:
        # Here, not at the top: redis_presence imports OnChange from this module.
        from infra.redis_presence import RedisPresence

        return RedisPresence(
            settings.REDIS_URL,
            prefix=settings.RIM_LAYER_PREFIX,
            grace=settings.RIM_PRESENCE_GRACE,
            timeout=settings.RIM_LAYER_TIMEOUT,
        )
    return MemoryPresence(grace=settings.RIM_PRESENCE_GRACE)
