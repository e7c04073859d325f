"""infra.dbworkers: the WebSocket side's database workers."""

import asyncio
import json
import logging
import threading

import pytest
from asgiref.sync import sync_to_async
from django.db import IntegrityError, transaction
from django.db.transaction import TransactionManagementError

from chat.models import Message
from chat.services import send_message
from infra import dbworkers, publish
from infra.dbworkers import DatabaseWorker, DatabaseWorkers
from tests.rest_helpers import group_of


class Refused(Exception):
    pass


@pytest.fixture
def sql_worker():
    """A worker for tests that reach the database: its connection is given back to
    the pool afterwards (the process's own workers hold most of it)."""
    made: list[DatabaseWorker] = []

    def make(**options) -> DatabaseWorker:
        made.append(DatabaseWorker("test-db", **options))
        return made[-1]

    yield make
    for worker in made:
        worker.close_connection()


async def test_calls_run_in_order_on_one_thread_and_each_gets_its_own_outcome():
    database = DatabaseWorker("test-db")
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
    database = DatabaseWorker("test-db")
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


async def test_events_a_call_publishes_reach_the_loop_before_its_caller_wakes(monkeypatch):
    """What a batch commits is handed to the event loop together with its outcomes:
    the events first, in order, then the callers (one wake-up for both)."""
    database = DatabaseWorker("test-db")
    seen: list = []
    monkeypatch.setattr(publish, "dispatch", lambda events: seen.append(("events", events)))

    def commit(*, n: int) -> int:
        publish.publish_now("g.1", {"type": "chat.entry", "n": n})
        return n

    first = database.run(commit, n=1)
    first.add_done_callback(lambda _: seen.append(("caller", 1)))
    assert await first == 1
    assert seen == [("events", [("g.1", {"type": "chat.entry", "n": 1})]), ("caller", 1)]


async def test_calls_with_one_route_share_a_worker_and_others_spread():
    workers = DatabaseWorkers("test-db", 3)

    def where() -> str:
        return threading.current_thread().name

    same = {await workers.run(where, route=7) for _ in range(5)}
    spread = {await workers.run(where) for _ in range(6)}
    assert len(same) == 1
    assert len(spread) == 3


async def test_a_cancelled_caller_does_not_stop_the_call_or_the_ones_after():
    database = DatabaseWorker("test-db")
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
    database = DatabaseWorker("test-db")

    def fatal() -> None:
        raise Fatal("stop")

    failed = database.run(fatal)
    after = database.run(lambda: "still serving")
    with pytest.raises(Fatal, match="stop"):
        await failed
    assert await after == "still serving"
    assert await database.run(lambda: "and later") == "and later"


async def test_a_failed_connection_cleanup_is_logged_and_the_worker_goes_on(monkeypatch, caplog):
    """After a failed call the worker drops its connection if the failure broke it;
    dropping it can itself fail (a broken socket on close): that is logged, and the
    next call still runs (it reconnects or reports)."""
    database = DatabaseWorker("test-db")

    class BrokenConnection:
        connection = object()
        errors_occurred = True

        def is_usable(self) -> bool:
            return False

        def close(self) -> None:
            raise OSError("connection already broken")

    monkeypatch.setattr(dbworkers.connections, "all", lambda **kwargs: [BrokenConnection()])

    def failing() -> None:
        raise Refused("query failed")

    with caplog.at_level(logging.ERROR, logger="rim.db"):
        with pytest.raises(Refused):
            await database.run(failing)
        assert await database.run(lambda: "ran") == "ran"
    assert "event=db_connection_cleanup_failed" in caplog.text


@pytest.mark.django_db(transaction=True)
async def test_in_one_transaction_a_failing_call_takes_back_only_its_own_writes(
    alice, bob, monkeypatch, sql_worker
):
    """SQLite's mode: the batch commits once, each call in a savepoint; what a call
    publishes leaves only with the commit, and a failed call's writes are undone."""
    database = sql_worker(one_transaction=True)
    group = await sync_to_async(group_of)(alice, bob)
    published: list = []
    monkeypatch.setattr(publish, "dispatch", lambda events: published.extend(events))
    release = threading.Event()

    def send(*, cmid: str, fail: bool = False) -> int:
        release.wait(5)
        msg_id = send_message(
            sender_id=alice.pk, gid=group.pk, kind="Text", content=cmid, client_msg_id=cmid
        ).message.pk
        if fail:
            raise Refused(cmid)
        return msg_id

    calls = [database.run(send, cmid="one"), database.run(send, cmid="two", fail=True)]
    calls.append(database.run(send, cmid="three"))
    release.set()
    outcomes = await asyncio.gather(*calls, return_exceptions=True)
    assert isinstance(outcomes[1], Refused)
    stored = await sync_to_async(list)(Message.objects.values_list("content", flat=True))
    assert sorted(stored) == ["one", "three"]
    assert [json.loads(e["push"])["body"]["content"] for _, e in published] == ["one", "three"]


async def test_a_batch_that_fails_outside_its_calls_fails_them_and_the_worker_goes_on(
    monkeypatch, caplog
):
    database = DatabaseWorker("test-db")
    collecting = publish.collecting

    def broken_once():
        monkeypatch.setattr(publish, "collecting", collecting)
        raise RuntimeError("collector broken")

    monkeypatch.setattr(publish, "collecting", broken_once)
    with (
        caplog.at_level(logging.ERROR, logger="rim.db"),
        pytest.raises(RuntimeError, match="collector broken"),
    ):
        await database.run(lambda: "lost")
    assert "event=db_batch_failed" in caplog.text
    assert database.idle()  # a graceful shutdown does not wait for the failed batch
    assert await database.run(lambda: "still serving") == "still serving"


@pytest.mark.django_db(transaction=True)
async def test_in_one_transaction_a_call_that_hides_a_database_error_is_taken_back(
    alice, bob, sql_worker
):
    """A call that catches the error of an inner atomic(savepoint=False) leaves the
    transaction marked for rollback: it fails, and only its writes are undone."""
    database = sql_worker(one_transaction=True)
    group = await sync_to_async(group_of)(alice, bob)
    release = threading.Event()

    def send(*, cmid: str, hide_error: bool = False) -> str:
        release.wait(5)
        send_message(
            sender_id=alice.pk, gid=group.pk, kind="Text", content=cmid, client_msg_id=cmid
        )
        if hide_error:
            try:
                with transaction.atomic(savepoint=False):
                    raise IntegrityError("a constraint failed")
            except IntegrityError:
                pass
        return cmid

    calls = [database.run(send, cmid="one"), database.run(send, cmid="two", hide_error=True)]
    calls.append(database.run(send, cmid="three"))
    release.set()
    outcomes = await asyncio.gather(*calls, return_exceptions=True)
    assert outcomes[0] == "one" and outcomes[2] == "three"
    assert isinstance(outcomes[1], TransactionManagementError)
    stored = await sync_to_async(list)(Message.objects.values_list("content", flat=True))
    assert sorted(stored) == ["one", "three"]


@pytest.mark.django_db(transaction=True)
async def test_in_one_transaction_closing_the_connection_waits_for_the_batch(
    alice, bob, sql_worker
):
    database = sql_worker(one_transaction=True)
    group = await sync_to_async(group_of)(alice, bob)
    release = threading.Event()

    def send(*, cmid: str) -> str:
        release.wait(5)
        send_message(
            sender_id=alice.pk, gid=group.pk, kind="Text", content=cmid, client_msg_id=cmid
        )
        return cmid

    first = database.run(send, cmid="one")
    closing = asyncio.create_task(asyncio.to_thread(database.close_connection))
    await asyncio.sleep(0.05)  # the close is queued behind the blocked call
    second = database.run(send, cmid="two")
    release.set()
    assert [await first, await second] == ["one", "two"]
    await closing
    assert await database.run(send, cmid="three") == "three"
    stored = await sync_to_async(list)(Message.objects.values_list("content", flat=True))
    assert sorted(stored) == ["one", "three", "two"]
