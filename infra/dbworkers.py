"""The WebSocket side's database thread: blocking ORM calls off the event loop, in
order, several per thread hop.

channels' database_sync_to_async hops to a thread and back for every call, and wraps
each hop in asgiref's context and executor machinery; under load that machinery, and
the two threads handing the GIL to each other once per call, cost more than the
queries. Here calls queue up while the thread is busy and it runs them all in one turn,
then wakes the event loop once for the lot. Each call is still its own transaction
(the services open them), and calls run in the order they were made, so writes, and
the acks that follow them, keep the order of the frames.
"""

import asyncio
import contextlib
import functools
import logging
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from asgiref.sync import SyncToAsync
from django.db import close_old_connections

log = logging.getLogger("rim.db")

Call = tuple[Callable, dict, asyncio.Future]


class DatabaseThread:
    def __init__(self, name: str):
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self.lock = threading.Lock()
        self.queue: list[Call] = []
        self.running = False

    def run(self, func: Callable, /, **kwargs) -> asyncio.Future:
        """Schedule func(**kwargs) on the thread; the future gets its outcome."""
        future = asyncio.get_running_loop().create_future()
        with self.lock:
            self.queue.append((func, kwargs, future))
            start, self.running = not self.running, True
        if start:
            self.executor.submit(self.drain)
        return future

    def wrap(self, func: Callable) -> Callable[..., asyncio.Future]:
        return functools.partial(self.run, func)

    def drain(self) -> None:
        while batch := self.take_queue():
            # As database_sync_to_async does around each call: drop connections that
            # broke or outlived CONN_MAX_AGE, before the batch and after a failure.
            close_stale_connections()
            outcomes = []
            for func, kwargs, future in batch:
                serve_async_to_sync_from(future.get_loop())
                try:
                    outcomes.append((future, func(**kwargs), None))
                except BaseException as exc:  # whatever it is, its caller gets it
                    outcomes.append((future, None, exc))
                    close_stale_connections()
            self.report(outcomes)

    def take_queue(self) -> list[Call]:
        """What was queued, or nothing: then the next call starts a new drain."""
        with self.lock:
            batch, self.queue = self.queue, []
            self.running = bool(batch)
        return batch

    @staticmethod
    def report(outcomes: list) -> None:
        by_loop: dict[asyncio.AbstractEventLoop, list] = {}
        for outcome in outcomes:
            by_loop.setdefault(outcome[0].get_loop(), []).append(outcome)
        for loop, settled in by_loop.items():
            # A loop that closed meanwhile (a test's) has no one left to tell.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(settle, settled)


def close_stale_connections() -> None:
    try:
        close_old_connections()
    except Exception:
        # Never stop the thread: the next query reconnects or reports the problem.
        log.exception("event=db_connection_cleanup_failed")


def serve_async_to_sync_from(loop: asyncio.AbstractEventLoop) -> None:
    """Make async_to_sync in this thread run its coroutine on `loop`, as it does in
    asgiref's own threads (the same thread-local): services publish their layer events
    that way after a commit, and the in-memory layer must only be touched from its
    loop. Without it, async_to_sync would start a new loop in yet another thread."""
    SyncToAsync.threadlocal.main_event_loop = loop
    SyncToAsync.threadlocal.main_event_loop_pid = os.getpid()


def settle(outcomes: list) -> None:
    for future, result, exc in outcomes:
        if future.cancelled():
            continue
        if exc is None:
            future.set_result(result)
        else:
            future.set_exception(exc)
