"""Layer events, published after commit and never waited for.

Every change that others must hear of is published here, by the service that commits
it (`publish_on_commit`); nothing else sends to the channel layer's groups. The layer
is at-most-once by contract (channels may drop group messages), and connections
repair what it loses from the database. So publishing is fire-and-forget into a
bounded buffer: a slow or hung layer delays or drops live pushes, and never holds up a
commit, an ack or a read.

Where a committed event goes depends on the thread that committed it:

- a database worker (infra.dbworkers) collects its batch's events and hands them to
  the event loop with the batch's outcomes, in one wake-up;
- on the event loop itself, they are dispatched at once;
- another thread of a server (a REST request under daphne) hands them to the server's
  loop with call_soon_threadsafe and goes on;
- with no server loop at all (a management command, the shell) they are sent in a
  short-lived loop, bounded by RIM_LAYER_TIMEOUT.

On the loop, a layer that delivers in-process (rim's ProcessChannelLayer) takes them
synchronously; any other layer gets them from one sender task per loop, in order, in
batches (one Redis round trip for many with rim's Redis layer).
"""

import asyncio
import contextlib
import logging
import threading
from collections import deque
from weakref import WeakKeyDictionary

from asgiref.sync import SyncToAsync, async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import transaction

from infra import metrics

log = logging.getLogger("rim.publish")

Event = tuple[str, dict]

_local = threading.local()


def publish_on_commit(layer_group: str, event: dict) -> None:
    """Send `event` to `layer_group` once the current transaction commits (at once
    outside a transaction); dropped if it rolls back."""
    transaction.on_commit(lambda: publish_now(layer_group, event))


def publish_now(layer_group: str, event: dict) -> None:
    """Send `event` without waiting for it, from whatever thread this is."""
    collected = getattr(_local, "events", None)
    if collected is not None:
        collected.append((layer_group, event))
        return
    metrics.EVENTS_PUBLISHED.labels(event["type"]).inc()
    publish_from_thread([(layer_group, event)])


@contextlib.contextmanager
def collecting():
    """Within this block, events this thread publishes are collected into the list it
    yields instead of being sent (a database worker sends them with its batch)."""
    events: list[Event] = []
    _local.events = events
    try:
        yield events
    finally:
        _local.events = None
        for _, event in events:
            metrics.EVENTS_PUBLISHED.labels(event["type"]).inc()


def publish_from_thread(events: list[Event]) -> None:
    loop = _running_loop() or _server_loop()
    if loop is None:
        _send_blocking(events)
    elif _running_loop() is loop:
        dispatch(events)
    else:
        try:
            loop.call_soon_threadsafe(dispatch, events)
        except RuntimeError:  # the loop closed meanwhile: nobody is listening there
            _send_blocking(events)


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _server_loop() -> asyncio.AbstractEventLoop | None:
    """The loop of the ASGI server that runs this thread's request, as asgiref records
    it for async_to_sync (sync views run in threads of its executors)."""
    loop = getattr(SyncToAsync.threadlocal, "main_event_loop", None)
    if loop is not None and loop.is_running():
        return loop
    return None


def _send_blocking(events: list[Event]) -> None:
    try:
        async_to_sync(_send_with_timeout)(get_channel_layer(), events)
    except Exception:
        _dropped(events, "send_failed")


# -- on the event loop ---------------------------------------------------------------


class _Outbox:
    """One loop's events waiting for the layer, and the task that sends them."""

    def __init__(self):
        self.events: deque[Event] = deque()
        self.sender: asyncio.Task | None = None


_outboxes: "WeakKeyDictionary[asyncio.AbstractEventLoop, _Outbox]" = WeakKeyDictionary()


def dispatch(events: list[Event]) -> None:
    """On the event loop: hand `events` to the layer without waiting."""
    layer = get_channel_layer()
    send_now = getattr(layer, "group_send_now", None)
    if send_now is not None:
        for group, event in events:
            send_now(group, event)
        return
    loop = asyncio.get_running_loop()
    outbox = _outboxes.get(loop)
    if outbox is None:
        outbox = _outboxes[loop] = _Outbox()
    outbox.events.extend(events)
    overflow = len(outbox.events) - settings.RIM_PUBLISH_BUFFER
    if overflow > 0:
        # The layer cannot keep up (or hangs): the oldest go, as a full channel's do.
        _dropped([outbox.events.popleft() for _ in range(overflow)], "buffer_full")
    if outbox.sender is None or outbox.sender.done():
        outbox.sender = loop.create_task(_drain(layer, outbox))


async def _drain(layer, outbox: _Outbox) -> None:
    while outbox.events:
        batch = list(outbox.events)
        outbox.events.clear()
        try:
            await _send_with_timeout(layer, batch)
        except Exception as exc:
            log.warning("event=publish_failed events=%d error=%r", len(batch), exc)
            _dropped(batch, "send_failed")


async def _send_with_timeout(layer, events: list[Event]) -> None:
    async with asyncio.timeout(settings.RIM_LAYER_TIMEOUT):
        send_many = getattr(layer, "group_send_many", None)
        if send_many is not None:
            await send_many(events)
        else:
            for group, event in events:
                await layer.group_send(group, event)


def _dropped(events: list[Event], reason: str) -> None:
    metrics.LAYER_DROPS.labels(reason).inc(len(events))


def outbox_empty() -> bool:
    """Nothing of this loop's waits for the layer (at shutdown)."""
    outbox = _outboxes.get(asyncio.get_running_loop())
    return outbox is None or (not outbox.events and (outbox.sender is None or outbox.sender.done()))
