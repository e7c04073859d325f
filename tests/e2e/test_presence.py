"""Presence across processes end to end (PROTOCOL.md §6.2): two `manage.py serve`
processes on one PostgreSQL database and one Redis, a short RIM_PRESENCE_GRACE, and
alice and bob, friends (so they share a one-to-one chat), on different processes.
"""

import re
import time
from datetime import UTC, datetime

import pytest

from tests.e2e.conftest import (
    Cluster,
    connected,
    env_for_tests,
    in_thread,
    new_user,
    require_services,
    server_pool,
    start_pair,
)
from tests.live import REDIS_URL, api, fresh_postgres_database

pytestmark = [pytest.mark.services, pytest.mark.e2e]

GRACE = 2.0
TIME = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    require_services()
    with (
        fresh_postgres_database() as database_url,
        server_pool(tmp_path_factory.mktemp("presence")) as pool,
    ):
        env = env_for_tests(
            DATABASE_URL=database_url, REDIS_URL=REDIS_URL, RIM_PRESENCE_GRACE=str(GRACE)
        )
        a, b = pool.new("a", env), pool.new("b", env)
        start_pair(a, b)
        yield Cluster(a, b, "pubsub")


def friends(base_url: str):
    """alice and bob, friends: one-to-one chat between them."""
    alice, bob = new_user(base_url, "alice"), new_user(base_url, "bob")
    assert api(base_url, "friend/add", {"fid": bob.uid}, alice.token) is True
    assert api(base_url, "friend/status/modify", {"fid": alice.uid, "status": 1}, bob.token)
    return alice, bob


def presence(base_url: str, viewer, *uids: int) -> list[dict]:
    query = ",".join(map(str, uids))
    return api(base_url, f"user/presence?uids={query}", token=viewer.token)


def presence_push(uid: int, content: str, last_seen: str | None) -> dict:
    return {
        "event": "Presence",
        "body": {"kind": "Text", "uid": uid, "content": content, "lastSeen": last_seen},
    }


async def test_online_and_offline_cross_processes(cluster):
    """alice logs in on B: bob, on A, is told at once. She leaves: bob is told after the
    grace period, with when she was last seen; both processes' REST agree throughout."""
    a, b = cluster.a, cluster.b
    alice, bob = await in_thread(friends, a.http_url)
    cb = await connected(a.ws_url, bob)
    try:
        ca = await connected(b.ws_url, alice)
        [push] = await cb.collect_pushes(1, event="Presence")
        assert push == presence_push(alice.uid, "online", None)
        for server in (a, b):
            answer = await in_thread(presence, server.http_url, bob, alice.uid, bob.uid)
            assert answer == [
                {"uid": alice.uid, "online": True, "lastSeen": None},
                {"uid": bob.uid, "online": True, "lastSeen": None},
            ]

        await ca.close()
        left = time.monotonic()
        [push] = await cb.collect_pushes(1, event="Presence", timeout=GRACE + 10)
        assert time.monotonic() - left >= GRACE - 0.2
        last_seen = push["body"]["lastSeen"]
        assert TIME.fullmatch(last_seen), push
        assert push == presence_push(alice.uid, "offline", last_seen)
        for server in (a, b):
            answer = await in_thread(presence, server.http_url, bob, alice.uid)
            assert answer == [{"uid": alice.uid, "online": False, "lastSeen": last_seen}]
        assert await cb.quiet() == []
    finally:
        await cb.close()


async def test_kill_9_of_the_process_holding_a_user_takes_it_offline_after_the_grace(cluster):
    """alice's only connection is on B, which is killed: A tells bob she went offline
    after the grace period, last seen about when B died."""
    a, b = cluster.a, cluster.b
    alice, bob = await in_thread(friends, b.http_url)
    cb = await connected(a.ws_url, bob)
    ca = await connected(b.ws_url, alice)
    try:
        [push] = await cb.collect_pushes(1, event="Presence")
        assert push == presence_push(alice.uid, "online", None)

        await in_thread(b.kill)
        died, killed_at = datetime.now(UTC), time.monotonic()
        [push] = await cb.collect_pushes(1, event="Presence", timeout=GRACE + 10)
        assert time.monotonic() - killed_at >= GRACE - 1.0
        last_seen = push["body"]["lastSeen"]
        assert push == presence_push(alice.uid, "offline", last_seen)
        seen = datetime.strptime(last_seen, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
        assert abs((seen - died).total_seconds()) < 2.0
        answer = await in_thread(presence, a.http_url, bob, alice.uid)
        assert answer == [{"uid": alice.uid, "online": False, "lastSeen": last_seen}]
        assert await cb.quiet() == []
    finally:
        await cb.close()
        await ca.close()
        await in_thread(b.start)
