"""What a process has in flight, so that a graceful shutdown can wait for it.

The application marks its work here (a frame being handled, a database-bound event
running beside the dispatch loop); the server (infra.server) stops taking new work on
SIGTERM and waits until this, the database workers and the publisher's outbox are all
idle before it closes the connections.
"""

import asyncio
import contextlib

from infra import dbworkers, publish

_tasks: set[asyncio.Task] = set()
_handling = 0


def track(task: asyncio.Task) -> None:
    """`task` is work in flight until it is done."""
    _tasks.add(task)
    task.add_done_callback(_tasks.discard)


@contextlib.contextmanager
def handling():
    """A frame is being handled within this block."""
    global _handling
    _handling += 1
    try:
        yield
    finally:
        _handling -= 1


def idle() -> bool:
    return not _handling and not _tasks and dbworkers.workers().idle() and publish.outbox_empty()


async def drained(deadline: float, busy=lambda: False, poll: float = 0.02) -> bool:
    """Wait until nothing is in flight (and `busy()` is false) or the loop's clock
    reaches `deadline`; True if everything finished."""
    loop = asyncio.get_running_loop()
    while loop.time() < deadline:
        if idle() and not busy():
            return True
        await asyncio.sleep(poll)
    return False
