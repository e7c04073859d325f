"""Presence trackers (infra.presence, infra.redis_presence; PROTOCOL.md §6.2).

MemoryPresence on its own. RedisPresence against the real Redis: several trackers
with distinct process ids on one key prefix stand for the processes of one
deployment; a tracker that is closed stops refreshing, as a process that died.
Grace periods are short; every wait is bounded.
"""

import asyncio
import logging
import time
import uuid
from datetime import UTC, datetime

import pytest
from redis.asyncio import Redis

from infra.presence import MemoryPresence
from infra.redis_presence import RedisPresence
from tests.e2e.conftest import PrivateRedis
from tests.live import REDIS_URL, free_port

GRACE = 0.5


class Reports:
    """Every on_change call of the trackers of one test: (tracker, uid, online,
    last_seen), in order."""

    def __init__(self):
        self.seen: list[tuple[str, int, bool, datetime | None]] = []

    def of(self, name: str):
        def report(uid: int, online: bool, last_seen: datetime | None) -> None:
            self.seen.append((name, uid, online, last_seen))

        return report

    async def until(self, count: int, timeout: float = 10.0) -> list:
        """Wait until there are `count` reports; all of them."""
        async with asyncio.timeout(timeout):
            while len(self.seen) < count:
                await asyncio.sleep(0.01)
        return self.seen

    async def quiet(self, within: float) -> list:
        """The reports after `within` seconds (a test expects no new one)."""
        await asyncio.sleep(within)
        return self.seen


def changes(reports: list) -> list[tuple[int, bool]]:
    return [(uid, online) for _, uid, online, _ in reports]


# -- MemoryPresence ------------------------------------------------------------------


async def test_memory_presence_reports_online_at_once_and_offline_after_the_grace():
    presence = MemoryPresence(grace=GRACE)
    reports = Reports()
    presence.start(reports.of("memory"))

    presence.connected(1)
    presence.connected(1)
    assert reports.seen == [("memory", 1, True, None)]
    presence.disconnected(1)
    presence.disconnected(1)
    presence.connected(1)  # back within the grace: not seen
    presence.disconnected(1)
    left = datetime.now(UTC)
    assert await presence.online({1, 2}) == {1}
    assert len(await reports.quiet(GRACE / 2)) == 1

    [*_, (_, uid, online, last_seen)] = await reports.until(2, timeout=GRACE * 4)
    assert (uid, online) == (1, False)
    assert abs((last_seen - left).total_seconds()) < 0.1
    assert await presence.online({1, 2}) == set()
    assert len(await reports.quiet(GRACE * 2)) == 2


# -- RedisPresence ----------------------------------------------------------------------


class Deployment:
    """Trackers on one Redis key prefix of their own, each standing for a process."""

    def __init__(self):
        self.prefix = f"rimtest-presence-{uuid.uuid4().hex[:12]}"
        self.reports = Reports()
        self.trackers: list[RedisPresence] = []

    def process(self, name: str, url: str = REDIS_URL, **options) -> RedisPresence:
        tracker = RedisPresence(url, prefix=self.prefix, grace=GRACE, process=name, **options)
        tracker.start(self.reports.of(name))
        self.trackers.append(tracker)
        return tracker

    async def close(self) -> None:
        for tracker in self.trackers:
            await tracker.close()
        await self.forget()

    async def forget(self) -> None:
        """Delete the deployment's keys, as a Redis that lost its data."""
        async with Redis.from_url(REDIS_URL, socket_timeout=3) as redis:
            keys = [key async for key in redis.scan_iter(match=f"{self.prefix}:*")]
            if keys:
                await redis.delete(*keys)


@pytest.fixture
async def deployment():
    try:
        async with Redis.from_url(REDIS_URL, socket_timeout=3) as redis:
            await redis.ping()
    except Exception as exc:
        pytest.fail(f"services test without Redis at {REDIS_URL}: {exc!r}")
    deployment = Deployment()
    try:
        yield deployment
    finally:
        await deployment.close()


@pytest.mark.services
async def test_going_online_is_reported_once_by_the_process_where_it_happened(deployment):
    a, b = deployment.process("a"), deployment.process("b")
    a.connected(1)
    assert await deployment.reports.until(1) == [("a", 1, True, None)]
    b.connected(1)
    b.connected(1)
    a.connected(2)
    await deployment.reports.until(2)
    assert await deployment.reports.quiet(GRACE * 2) == [
        ("a", 1, True, None),
        ("a", 2, True, None),
    ]
    assert await a.online({1, 2, 3}) == {1, 2}
    assert await b.online({1, 2, 3}) == {1, 2}
    # A process without connections (nor a loop of its own yet) answers the same.
    bystander = RedisPresence(REDIS_URL, prefix=deployment.prefix, grace=GRACE)
    assert await bystander.online({1, 2, 3}) == {1, 2}


@pytest.mark.services
async def test_going_offline_is_reported_once_after_the_grace_with_no_connection_anywhere(
    deployment,
):
    a, b = deployment.process("a"), deployment.process("b")
    a.connected(1)
    await deployment.reports.until(1)
    b.connected(1)
    a.disconnected(1)
    assert len(await deployment.reports.quiet(GRACE * 2)) == 1  # b still holds it

    b.disconnected(1)
    left, started = datetime.now(UTC), time.monotonic()
    assert await a.online({1}) == {1}  # during the grace
    [*_, (_, uid, online, last_seen)] = await deployment.reports.until(2)
    assert time.monotonic() - started >= GRACE - 0.05
    assert (uid, online) == (1, False)
    assert abs((last_seen - left).total_seconds()) < 0.2
    assert len(await deployment.reports.quiet(GRACE * 2)) == 2
    assert await a.online({1}) == set()
    assert await b.online({1}) == set()


@pytest.mark.services
async def test_a_reconnect_on_another_process_within_the_grace_is_not_seen(deployment):
    a, b = deployment.process("a"), deployment.process("b")
    a.connected(1)
    await deployment.reports.until(1)
    a.disconnected(1)
    await asyncio.sleep(GRACE / 2)
    b.connected(1)
    assert changes(await deployment.reports.quiet(GRACE * 3)) == [(1, True)]
    assert await a.online({1}) == {1}

    b.disconnected(1)
    await deployment.reports.until(2)
    assert changes(await deployment.reports.quiet(GRACE * 2)) == [(1, True), (1, False)]


@pytest.mark.services
async def test_the_users_of_a_process_that_stops_refreshing_go_offline_after_the_grace(
    deployment,
):
    a, b = deployment.process("a"), deployment.process("b")
    a.connected(1)
    a.connected(2)
    await deployment.reports.until(2)
    b.connected(2)
    b.connected(3)
    await deployment.reports.until(3)

    await a.close()  # a dies: its heartbeat stops, nothing else is said
    died, started = datetime.now(UTC), time.monotonic()
    [*_, (name, uid, online, last_seen)] = await deployment.reports.until(4)
    assert time.monotonic() - started >= GRACE - a.refresh - 0.05
    assert (name, uid, online) == ("b", 1, False)
    assert -a.refresh - 0.1 < (last_seen - died).total_seconds() < 0.1
    assert len(await deployment.reports.quiet(GRACE * 2)) == 4
    assert await b.online({1, 2, 3}) == {2, 3}


@pytest.mark.services
async def test_a_process_sends_its_users_again_when_redis_lost_them(deployment):
    a, b = deployment.process("a"), deployment.process("b")
    a.connected(1)
    await deployment.reports.until(1)
    await deployment.forget()
    assert await b.online({1}) == set()
    # a's next refresh finds itself unknown and sends its user: online again.
    assert changes(await deployment.reports.until(2)) == [(1, True), (1, True)]
    assert await b.online({1}) == {1}


@pytest.mark.services
async def test_a_hung_redis_blocks_neither_connected_nor_the_loop(deployment, tmp_path):
    hung = PrivateRedis(tmp_path, "--enable-debug-command", "local")
    hung.start()
    try:
        a = deployment.process("a", url=hung.url)
        # Asks only: a tracker that ticked would time out on the hung Redis and lose
        # the reports of the work Redis did for it afterwards (as documented).
        impatient = RedisPresence(hung.url, prefix=deployment.prefix, grace=GRACE, timeout=1.0)
        a.connected(1)
        await deployment.reports.until(1)

        async with Redis.from_url(hung.url) as sleeper:
            sleep = asyncio.create_task(sleeper.execute_command("DEBUG", "SLEEP", "3"))
            await asyncio.sleep(0.2)
            started = time.monotonic()
            a.connected(2)
            a.disconnected(1)
            assert time.monotonic() - started < 0.05
            await asyncio.sleep(0.1)
            assert time.monotonic() - started < 0.5  # the loop runs on
            # online() gives up after its timeout and answers what it knows.
            assert await impatient.online({1, 2}) == set()
            assert await a.online({2}) == {2}
            assert time.monotonic() - started < 2.0
            await sleep

        # Once Redis answers again, what happened meanwhile is reported.
        reports = await deployment.reports.until(3)
        assert changes(reports) == [(1, True), (2, True), (1, False)]
        assert await impatient.online({1, 2}) == {2}
    finally:
        hung.kill()


@pytest.mark.services
async def test_an_unreachable_redis_is_logged_once_and_online_answers_from_this_process(
    deployment, caplog
):
    with caplog.at_level(logging.WARNING, logger="rim.presence"):
        a = deployment.process("a", url=f"redis://127.0.0.1:{free_port()}/0")
        started = time.monotonic()
        a.connected(1)
        assert time.monotonic() - started < 0.05
        assert await a.online({1, 2}) == {1}
        await asyncio.sleep(a.refresh * 4)
    failures = [r for r in caplog.records if "presence_redis_failed" in r.getMessage()]
    assert len(failures) == 1
    assert deployment.reports.seen == []
