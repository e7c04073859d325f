"""Faults of the shared services, end to end with real processes.

Redis: a private redis-server (started on a free port for each test, so the shared
one is never disturbed) is killed while two server processes use it, then started
again, empty, as after a crash or a restart without persistence.
PostgreSQL: the server's database refuses new connections and its open ones are
terminated, as when PostgreSQL restarts or fails over; then it comes back.
"""

import asyncio
import time

import pytest
import redis as redis_py

from tests.e2e.conftest import (
    Cluster,
    PrivateRedis,
    WsClient,
    connected,
    create_group,
    cut_database,
    env_for_tests,
    history,
    in_thread,
    new_user,
    production_server,
    require_services,
    restore_database,
    server_pool,
    start_pair,
)
from tests.live import ApiError, api, fresh_postgres_database

pytestmark = [pytest.mark.services, pytest.mark.e2e]


@pytest.fixture(params=["core", "pubsub"])
def redis_cluster(request, tmp_path, private_redis):
    layer = request.param
    require_services()
    with fresh_postgres_database() as database_url, server_pool(tmp_path) as pool:
        env = env_for_tests(
            DATABASE_URL=database_url, REDIS_URL=private_redis.url, RIM_CHANNEL_LAYER=layer
        )
        a = pool.new("a", env)
        b = pool.new("b", env)
        start_pair(a, b)
        yield Cluster(a, b, layer)


def users(server, *names: str):
    return [new_user(server.http_url, name) for name in names]


async def wait_for_live_push(sender: WsClient, receiver: WsClient, gid: int, bound: float):
    """Send from `sender` until `receiver` gets one of them live, within `bound` s.

    Right after Redis returns, a fan-out may still fail on a pooled connection that
    died with the old server (logged, and repaired by the next message), so the first
    message after the outage is not required to arrive live; one within seconds is.
    """
    deadline = time.monotonic() + bound
    attempt = 0
    while time.monotonic() < deadline:
        attempt += 1
        ack = await sender.send_msg(gid, f"after the outage {attempt}")
        for push in await receiver.quiet(1.0):
            receiver.pushes.append(push)
            if push["body"]["msgId"] == ack["serverMsgId"]:
                return attempt
    raise AssertionError(f"no live push within {bound} s after Redis came back")


def assert_complete(pushes: list[dict], expected_ids: list[int], who: str) -> None:
    """Pushes in increasing seq, no repeats, and exactly the expected messages."""
    seqs = [p["body"]["seq"] for p in pushes]
    assert seqs == sorted(set(seqs)), f"{who}: out of order or repeated: {seqs}"
    assert [p["body"]["msgId"] for p in pushes] == sorted(expected_ids), who


async def test_redis_outage_keeps_acking_and_loses_nothing(redis_cluster, private_redis):
    """Simulates Redis dying under two server processes and restarting empty.

    While it is down: sends still commit and ack on both processes, fan-out failures
    are logged and crash nothing, every WebSocket stays open and answers Heart. When it
    is back: live delivery resumes on the connections that stayed open, the messages
    sent during the outage reach every member (gap repair), in order, once, and a
    member who was offline throughout is synced all of them at its next Login.
    """
    a, b = redis_cluster.a, redis_cluster.b
    alice, bob, carol, erin = await in_thread(users, a, "alice", "bob", "carol", "erin")
    gid = await in_thread(create_group, a.http_url, alice, [bob, carol, erin])
    ca = await connected(a.ws_url, alice)
    cb = await connected(b.ws_url, bob)
    cc = await connected(b.compat_ws_url, carol)
    clients = (ca, cb, cc)
    sent: dict[WsClient, list[int]] = {client: [] for client in clients}
    received: dict[WsClient, list[dict]] = {client: [] for client in clients}
    try:
        first = await ca.send_msg(gid, "before the outage")
        sent[ca].append(first["serverMsgId"])
        for client in (cb, cc):
            push = await client.next_push()
            assert push["body"]["msgId"] == first["serverMsgId"]
            received[client].append(push)

        await in_thread(private_redis.kill)
        for n in range(3):
            sent[ca].append((await ca.send_msg(gid, f"during the outage {n}"))["serverMsgId"])
        sent[cb].append((await cb.send_msg(gid, "bob, during the outage"))["serverMsgId"])
        await asyncio.sleep(1.0)  # the layer receive loops of both processes hit the outage
        for client in clients:
            assert client.is_open, client.name
            assert (await client.request("Heart"))["content"] == "Ok"
        stored = await in_thread(history, b.http_url, carol, gid)
        assert [m["id"] for m in stored] == [*sent[ca], *sent[cb]]
        assert "event=publish_failed" in a.log_text()
        assert "event=publish_failed" in b.log_text()

        await in_thread(private_redis.start)
        await wait_for_live_push(ca, cc, gid, bound=30)
        stored = await in_thread(history, b.http_url, carol, gid)
        known = {*sent[ca], *sent[cb]}
        sent[ca] += [m["id"] for m in stored if m["id"] not in known]
        # A last message from carol reaches alice and bob after all they missed.
        last = (await cc.send_msg(gid, "all good?"))["serverMsgId"]
        sent[cc].append(last)
        everything = [i for ids in sent.values() for i in ids]

        for client in (ca, cb):
            while not received[client] or received[client][-1]["body"]["msgId"] != last:
                received[client].append(await client.next_push())
        for client in clients:
            received[client] += await client.quiet(0.5)
            expected = [i for i in everything if i not in sent[client]]
            assert_complete(received[client], expected, client.name)

        ce = await connected(b.ws_url, erin)
        try:
            synced = await ce.collect_pushes(len(everything))
            assert [p["body"]["msgId"] for p in synced] == sorted(everything)
            assert await ce.quiet(0.3) == []
        finally:
            await ce.close()
        for server in (a, b):
            assert "Exception inside application" not in server.log_text()
    finally:
        for client in clients:
            await client.close()


@pytest.fixture
def pg_server(tmp_path):
    with production_server(
        tmp_path,
        # A request waits this long for a connection the outage will not give.
        RIM_DB_POOL_TIMEOUT="2",
        # bob-late logs in only once the outage is over.
        RIM_LOGIN_TIMEOUT="300",
        # Every Heart checks the connection's tail, on the database.
        RIM_TAIL_CHECK_INTERVAL="0",
    ) as server_and_database:
        yield server_and_database


async def test_postgres_outage_answers_server_error_and_connections_survive(pg_server):
    """Simulates PostgreSQL going away under a running server, twice.

    First its connections are cut (a quick restart): the next event may get
    server_error while the server reconnects; its retry with the same clientMsgId
    succeeds and stores the message once. Then the database also refuses new
    connections for a while (an outage): events that need it get server_error (never
    Ok), Heart still works, a Login on a new connection is refused with server_error,
    REST answers 503, and no WebSocket closes. Once it is back, the same connections
    log in, send and receive again, and only what was acked Ok is stored.
    """
    server, database = pg_server
    alice, bob = await in_thread(users, server, "alice", "bob")
    gid = await in_thread(create_group, server.http_url, alice, [bob])
    ca = await connected(server.ws_url, alice)
    cb = await connected(server.compat_ws_url, bob)
    late = await WsClient.open(server.ws_url, "bob-late")
    try:
        before = await ca.send_msg(gid, "before")
        assert (await cb.next_push())["body"]["msgId"] == before["serverMsgId"]

        # A quick restart: connections cut, new ones accepted.
        assert await in_thread(lambda: cut_database(database, refuse_new=False)) >= 1
        ack = await ca.request("Msg", gid=gid, content="across the cut", cmid="cut-1")
        assert ack["content"] in {"Ok", "server_error"}, ack
        if ack["content"] == "server_error":
            assert ack["serverMsgId"] is None
            ack = await ca.send_msg(gid, "across the cut", cmid="cut-1")
        across = ack["serverMsgId"]
        assert (await cb.next_push())["body"]["msgId"] == across

        # An outage: connections cut and refused until restored.
        await in_thread(lambda: cut_database(database, refuse_new=True))
        try:
            for attempt in range(2):
                ack = await ca.request("Msg", gid=gid, content="in the outage", cmid="out-1")
                assert ack["content"] == "server_error", (attempt, ack)
                assert ack["serverMsgId"] is None and ack["detail"] == "internal error"
            ack = await cb.request("Read", gid=gid, msg_id=across)
            assert ack["content"] == "server_error"
            # Its tail check fails on the database: still one Ok, nothing more.
            assert (await ca.request("Heart"))["content"] == "Ok"
            assert await ca.quiet(0.3) == []
            refused = await late.request("Login", uid=bob.uid, content=bob.token)
            assert refused["content"] == "server_error"
            with pytest.raises(ApiError) as error:
                await in_thread(api, server.http_url, f"user/get?uid={bob.uid}", None, bob.token)
            # The pool cannot connect: shed as busy, not reported as a bug.
            assert error.value.status == 503
            assert ca.is_open and cb.is_open and late.is_open
        finally:
            await in_thread(restore_database, database)

        # Back: the same connections carry on; the client's retry stores the message once.
        # The pool reconnects with a backoff (psycopg's: 1 s, doubling): until it has,
        # the retry may still get server_error, as a client expects after an outage.
        ack = await retry_until_ok(ca, gid, "in the outage", cmid="out-1", within=30)
        outage = ack["serverMsgId"]
        assert (await cb.next_push())["body"]["msgId"] == outage
        assert (await cb.request("Read", gid=gid, msg_id=outage))["content"] == "Ok"
        receipt = await ca.next_push()
        assert (receipt["event"], receipt["body"]["msgId"]) == ("Read", outage)
        await late.login(bob.uid, bob.token)
        assert await late.quiet(0.5) == []  # bob had read it all: nothing to sync
        again = await ca.send_msg(gid, "after")
        for client in (cb, late):
            assert (await client.next_push())["body"]["msgId"] == again["serverMsgId"]

        stored = await in_thread(history, server.http_url, bob, gid)
        assert [m["content"] for m in stored] == [
            "before",
            "across the cut",
            "in the outage",
            "after",
        ]
        log = server.log_text()
        assert "event=ws_server_error" in log and "Traceback" in log
        assert "event=tail_check_failed" in log
        assert "Exception inside application" not in log
    finally:
        for client in (ca, cb, late):
            await client.close()


async def retry_until_ok(client, gid: int, content: str, *, cmid: str, within: float) -> dict:
    """Send, and again on server_error (never any other answer), until Ok."""
    async with asyncio.timeout(within):
        while True:
            ack = await client.request("Msg", gid=gid, content=content, cmid=cmid)
            if ack["content"] == "Ok":
                return ack
            assert ack["content"] == "server_error" and ack["serverMsgId"] is None, ack
            await asyncio.sleep(0.5)


@pytest.fixture
def hanging_redis(tmp_path):
    """A private Redis that can be made to hang (DEBUG SLEEP) without going down."""
    redis = PrivateRedis(tmp_path, "--enable-debug-command", "local")
    redis.start()
    try:
        yield redis
    finally:
        redis.kill()


def hang(redis: PrivateRedis, seconds: float) -> None:
    """Make `redis` answer nothing for `seconds` (it blocks in DEBUG SLEEP)."""
    client = redis_py.Redis.from_url(redis.url, socket_timeout=seconds + 5)
    try:
        client.execute_command("DEBUG", "SLEEP", str(seconds))
    finally:
        client.close()


@pytest.mark.parametrize("layer", ["core", "pubsub"])
async def test_a_hung_redis_delays_live_pushes_only_never_acks_or_reads(
    tmp_path, hanging_redis, layer
):
    """Redis not down but unresponsive for 8 s: acks and reads go on at their usual
    pace (nothing on the database path waits for the layer, publishing is
    fire-and-forget), a connection keeps reading frames past 32 sends, and when Redis
    answers again every member has every message, in order, once."""
    with production_server(
        tmp_path, REDIS_URL=hanging_redis.url, RIM_CHANNEL_LAYER=layer, RIM_LAYER_TIMEOUT="2"
    ) as (server, _):
        alice, bob = await in_thread(users, server, "alice", "bob")
        gid = await in_thread(create_group, server.http_url, alice, [bob])
        ca = await connected(server.ws_url, alice)
        cb = await connected(server.ws_url, bob)
        try:
            first = (await ca.send_msg(gid, "before"))["serverMsgId"]
            assert (await cb.next_push())["body"]["msgId"] == first
            hung = asyncio.ensure_future(in_thread(hang, hanging_redis, 8))
            await asyncio.sleep(0.3)
            started = time.monotonic()
            read = await cb.request("Read", gid=gid, msg_id=first)
            assert read["content"] == "Ok"
            assert time.monotonic() - started < 1.5, "a Read waited for Redis"
            sent = [first]
            for n in range(40):  # more than the 32 events a connection runs at once
                ack = await ca.send_msg(gid, f"during {n}", timeout=3)
                sent.append(ack["serverMsgId"])
            during = time.monotonic() - started
            assert during < 6, f"40 sends took {during:.1f} s while Redis hung"
            assert not hung.done(), "Redis answered too early for the test to mean anything"
            await hung
            # Redis answers again: what the layer dropped is repaired at the next event.
            deadline = time.monotonic() + 20
            pushes: list[dict] = []
            while time.monotonic() < deadline:
                last = (await ca.send_msg(gid, "after"))["serverMsgId"]
                sent.append(last)
                pushes += await cb.quiet(1.0)
                if pushes and pushes[-1]["body"]["msgId"] == last:
                    break
            received = [first, *[p["body"]["msgId"] for p in pushes]]
        finally:
            await ca.close()
            await cb.close()
    assert received == sent, "every message, in order, once"
