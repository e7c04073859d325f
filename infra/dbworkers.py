"""The WebSocket side's database workers: blocking ORM calls off the event loop, in
order per worker, several per thread hop, several workers in flight at once.

channels' database_sync_to_async hops to a thread and back for every call, and wraps
each hop in asgiref's context and executor machinery; under load that machinery, and
the two threads handing the GIL to each other once per call, cost more than the
queries. Here calls queue up while a worker is busy and it runs them all in one turn,
then wakes the event loop once for the lot, handing over with them the layer events
their commits published (infra.publish). Each call is still its own transaction (the
services open them).

A worker runs its calls in the order they were made. Calls routed by the same key (a
group id) always go to the same worker, so a group's writes commit in the order of
the frames; different groups commit on different workers at once, each with its own
database connection, and PostgreSQL flushes their commits to its WAL together (group
commit) instead of one after the other. SQLite has one writer whatever we do: one
worker there.
"""

import asyncio
import contextlib
import functools
import itertools
import logging
import queue
import threading
import time
from collections.abc import Callable

from django.conf import settings
from django.db import connection, connections, transaction
from django.db.transaction import TransactionManagementError

from infra import metrics, publish

log = logging.getLogger("rim.db")

Call = tuple[Callable, dict, asyncio.Future, float]

# Rises each time a worker finds its connection broken. A database restart or failover
# breaks every worker's connection at once, but each would only find out by failing
# a call of its own; a worker that sees this number move checks its connection first.
_breakages = 0


class DatabaseWorker:
    """One thread with its own database connection, running queued calls in order.

    The thread blocks on a SimpleQueue (C-implemented: putting a call and waking the
    thread cost well under a microsecond), takes whatever has piled up as one batch,
    and runs it."""

    def __init__(self, name: str, *, one_transaction: bool = False):
        self.name = name
        self.one_transaction = one_transaction
        self.calls: queue.SimpleQueue = queue.SimpleQueue()
        # Calls queued (counted by the event loop's thread) and finished (by this
        # worker's): each has one writer, so no lock; equal when the worker is idle.
        self.queued = 0
        self.finished = 0
        self.breakages_seen = 0
        self.thread = threading.Thread(target=self.serve, name=name, daemon=True)
        self.thread.start()

    def run(self, func: Callable, /, **kwargs) -> asyncio.Future:
        """Schedule func(**kwargs) on this worker; the future gets its outcome."""
        future = asyncio.get_running_loop().create_future()
        self.queued += 1
        metrics.DB_QUEUE_DEPTH.inc()
        self.calls.put((func, kwargs, future, time.monotonic()))
        return future

    def serve(self) -> None:
        while True:
            batch = [self.calls.get()]
            with contextlib.suppress(queue.Empty):
                while True:
                    batch.append(self.calls.get_nowait())
            try:
                self.run_batch(batch)
            except Exception as exc:
                # Never let the thread die: every later call would wait forever.
                log.exception("event=db_batch_failed worker=%s", self.name)
                self.report([(future, None, exc) for _, _, future, _ in batch], [])

    def run_batch(self, batch: list[Call]) -> None:
        # Closing the connection (future None) must not happen inside the batch's
        # transaction: after the batch.
        closes = [call for call in batch if call[2] is None]
        if closes:
            batch = [call for call in batch if call[2] is not None]
        try:
            if self.breakages_seen != _breakages:
                self.breakages_seen = _breakages
                drop_connection_if(_unusable)
            with publish.collecting() as events:
                if self.one_transaction:
                    outcomes = self.run_in_one_transaction(batch)
                else:
                    outcomes = [self.run_call(call) for call in batch]
        finally:
            # Counted done even when the batch failed (serve() answers its callers):
            # otherwise the worker never looks idle again to a graceful shutdown.
            for call in closes:
                self.run_call(call)
            metrics.DB_QUEUE_DEPTH.dec(len(batch))  # closes are not in the gauge
            self.finished += len(batch) + len(closes)
        self.report(outcomes, events)

    def run_call(self, call: Call, *, savepoint: bool = False) -> tuple:
        func, kwargs, future, queued_at = call
        metrics.DB_WAIT.observe(time.monotonic() - queued_at)
        try:
            if savepoint:
                with transaction.atomic():
                    result = func(**kwargs)
                    if transaction.get_connection().needs_rollback:
                        # It swallowed a database error: take back what it wrote.
                        raise TransactionManagementError(f"{func.__name__} hid a database error")
                return future, result, None
            return future, func(**kwargs), None
        except BaseException as exc:  # whatever it is, its caller gets it
            if not savepoint and drop_connection_if(_failed_and_unusable):
                self.report_breakage()
            return future, None, exc

    def run_in_one_transaction(self, batch: list[Call]) -> list[tuple]:
        """SQLite: the batch's calls in one transaction, each in a savepoint of its own
        (a failing call takes back only what it wrote). SQLite has one writer and a
        commit per message was most of a send's cost (with the search index's segment
        written at each commit); PostgreSQL instead commits calls on several workers
        at once and must not hold a group's row lock across a batch. Nothing is
        answered before the commit: durable before the ack holds."""
        try:
            with transaction.atomic():
                return [self.run_call(call, savepoint=True) for call in batch]
        except BaseException as exc:  # the commit failed: nothing of the batch is stored
            return [(future, None, exc) for _, _, future, _ in batch]

    def idle(self) -> bool:
        return self.finished == self.queued

    def report_breakage(self) -> None:
        global _breakages
        _breakages += 1
        self.breakages_seen = _breakages

    @staticmethod
    def report(outcomes: list, events: list) -> None:
        by_loop: dict[asyncio.AbstractEventLoop, list] = {}
        for outcome in outcomes:
            if outcome[0] is not None:  # a call from outside the loop (close_connection)
                by_loop.setdefault(outcome[0].get_loop(), []).append(outcome)
        for loop, settled in by_loop.items():
            # A loop that closed meanwhile (a test's) has no one left to tell.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(settle, settled, events)
            events = []  # published once, on the first loop (there is one in a server)
        if events:
            publish.publish_from_thread(events)

    def close_connection(self) -> None:
        """Close this worker's database connection (tests, shutdown): run on its
        thread, from a thread without an event loop, and wait."""
        done = threading.Event()

        def close_all() -> None:
            try:
                connections.close_all()
            finally:
                done.set()

        self.queued += 1
        self.calls.put((close_all, {}, None, time.monotonic()))
        done.wait(timeout=30)


class DatabaseWorkers:
    """A fixed set of workers; `run(..., route=key)` sends every call with the same key
    to the same worker, calls without one to the next worker in turn."""

    def __init__(self, name: str, count: int, *, one_transaction: bool = False):
        self.workers = [
            DatabaseWorker(f"{name}-{n}", one_transaction=one_transaction)
            for n in range(max(count, 1))
        ]
        self.turns = itertools.cycle(self.workers)

    def run(self, func: Callable, /, *, route: int | None = None, **kwargs) -> asyncio.Future:
        worker = next(self.turns) if route is None else self.workers[route % len(self.workers)]
        return worker.run(func, **kwargs)

    def close_connections(self) -> None:
        for worker in self.workers:
            worker.close_connection()

    def idle(self) -> bool:
        """No call queued or running on any worker."""
        return all(worker.idle() for worker in self.workers)


@functools.cache
def workers() -> DatabaseWorkers:
    """The process's workers, created at first use (settings are read by then)."""
    return DatabaseWorkers(
        "rim-db", settings.RIM_DB_WORKERS, one_transaction=connection.vendor == "sqlite"
    )


def _unusable(connection) -> bool:
    return not connection.is_usable()


def _failed_and_unusable(connection) -> bool:
    return connection.errors_occurred and not connection.is_usable()


def drop_connection_if(broken: Callable) -> bool:
    """Close this thread's connection if `broken(connection)`, so that the next call
    reconnects instead of failing too. True if one was closed."""
    closed = False
    for wrapper in connections.all(initialized_only=True):
        try:
            if wrapper.connection is not None and broken(wrapper):
                wrapper.close()
                closed = True
        except Exception:
            # Never stop the worker: the next query reconnects or reports the problem.
            log.exception("event=db_connection_cleanup_failed")
    return closed


def settle(outcomes: list, events: list) -> None:
    """On the event loop: publish what the batch committed, then wake its callers."""
    if events:
        publish.dispatch(events)
    for future, result, exc in outcomes:
        if future.done():  # cancelled, or settled before its batch failed
            continue
        if exc is None:
            future.set_result(result)
        else:
            future.set_exception(exc)
