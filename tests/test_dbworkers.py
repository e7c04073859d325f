"""infra.dbworkers: the WebSocket side's database thread."""

import asyncio
import logging
import threading

import pytest
from asgiref.sync import async_to_sync

from infra import dbworkers
from infra.dbworkers import DatabaseThread


class Refused(Exception):
    pass


async def test_calls_run_in_order_on_one_thread_and_each_gets_its_own_outcome():
    database = DatabaseThread("test-db")
    ran: list[tuple[int, str]] = []

    def work(*, n: int) -> int:
        ran.append((n, threading.current_thread().name))
        if n % 7 == 0:
            raise Refused(n)
        return n * n

    outcomes = await asyncio.gather(
        *(database.run(work, n=n) for n in range(1, 60)), return_exceptions=True
    )
    assert [n for n, _ in ran] == list(range(1, 60))
    assert len({name for _, name in ran}) == 1
    assert ran[0][1] != threading.current_thread().name
    for n, outcome in zip(range(1, 60), outcomes, strict=True):
        if n % 7 == 0:
            assert isinstance(outcome, Refused) and outcome.args == (n,)
        else:
            assert outcome == n * n


async def test_calls_made_while_the_thread_is_busy_run_in_one_turn():
    """The first call holds the thread until nine more are queued: those nine are
    settled together, in one wake-up of the loop (each sees all of them done)."""
    database = DatabaseThread("test-db")
    release = threading.Event()
    turns = []

    def first() -> None:
        release.wait(5)

    def later(*, n: int) -> int:
        return n

    blocked = database.run(first)
    queued = [database.run(later, n=n) for n in range(9)]
    for future in queued:
        future.add_done_callback(lambda _: turns.append(all(f.done() for f in queued)))
    release.set()
    await blocked
    assert await asyncio.gather(*queued) == list(range(9))
    assert turns == [True] * 9


async def test_async_to_sync_on_the_thread_runs_on_the_callers_loop():
    """Services publish layer events with async_to_sync after a commit; the in-memory
    layer must see them on its own loop, not on a new loop in another thread."""
    database = DatabaseThread("test-db")
    caller_loop = asyncio.get_running_loop()

    async def where() -> tuple[asyncio.AbstractEventLoop, str]:
        return asyncio.get_running_loop(), threading.current_thread().name

    loop, thread = await database.run(async_to_sync(where))
    assert loop is caller_loop
    assert thread == threading.current_thread().name


async def test_a_cancelled_caller_does_not_stop_the_call_or_the_ones_after():
    database = DatabaseThread("test-db")
    release = threading.Event()
    done = []

    def slow() -> None:
        release.wait(5)
        done.append("slow")

    abandoned = database.run(slow)
    follower = database.run(lambda: done.append("next") or "next")
    abandoned.cancel()
    release.set()
    assert await follower == "next"
    assert done == ["slow", "next"]


class Fatal(BaseException):
    """Not an Exception: the kind that would end a loop catching only Exception."""


async def test_a_base_exception_reaches_its_caller_and_the_thread_goes_on():
    database = DatabaseThread("test-db")

    def fatal() -> None:
        raise Fatal("stop")

    failed = database.run(fatal)
    after = database.run(lambda: "still serving")
    with pytest.raises(Fatal, match="stop"):
        await failed
    assert await after == "still serving"
    assert await database.run(lambda: "and later") == "and later"


async def test_a_failed_connection_cleanup_is_logged_and_the_calls_still_run(monkeypatch, caplog):
    """Dropping a stale connection can itself fail (a broken socket on close): the
    thread logs it and runs the call; the next query reconnects or reports."""
    database = DatabaseThread("test-db")

    def broken_cleanup() -> None:
        raise OSError("connection already broken")

    monkeypatch.setattr(dbworkers, "close_old_connections", broken_cleanup)
    with caplog.at_level(logging.ERROR, logger="rim.db"):
        assert await database.run(lambda: "ran") == "ran"
    assert "event=db_connection_cleanup_failed" in caplog.text
