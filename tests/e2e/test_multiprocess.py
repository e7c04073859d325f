"""Scale-out end to end: two `manage.py serve` processes sharing one PostgreSQL
database and Redis (channels-redis), spoken to by real WebSocket clients. alice is
connected to process A, bob and carol to process B, so every push, receipt and
membership change in these tests crosses processes through the channel layer.

Every test runs for both layer classes (RIM_CHANNEL_LAYER=core: RedisChannelLayer,
pubsub: RedisPubSubChannelLayer). One cluster per layer serves the module; the crash
test restarts the process it kills.
"""

import asyncio
import uuid

import pytest

from tests.e2e.conftest import (
    Cluster,
    WsClient,
    connected,
    create_group,
    env_for_tests,
    history,
    in_thread,
    new_user,
    pid_redis_db,
    require_services,
    server_pool,
    start_pair,
)
from tests.live import REDIS_URL, ApiError, DaphneServer, api, frame, fresh_postgres_database

pytestmark = [pytest.mark.services, pytest.mark.e2e]


@pytest.fixture(scope="module", params=["core", "pubsub"])
def cluster(request, tmp_path_factory):
    layer = request.param
    workdir = tmp_path_factory.mktemp(f"cluster-{layer}")
    require_services()
    with fresh_postgres_database() as database_url, server_pool(workdir) as pool:
        env = env_for_tests(
            DATABASE_URL=database_url,
            REDIS_URL=pid_redis_db(REDIS_URL) if layer == "core" else REDIS_URL,
            RIM_CHANNEL_LAYER=layer,
        )
        a = pool.new("a", env)
        b = pool.new("b", env)
        start_pair(a, b)
        yield Cluster(a, b, layer)


def users(server: DaphneServer, *names: str):
    return [new_user(server.http_url, name) for name in names]


async def test_messages_acks_and_read_receipts_cross_processes(cluster):
    """A message from A reaches both members on B and one from B reaches A (and the
    other member on B); Ack and Read are acked, the Read receipt reaches the other
    members on both processes, and the delivered watermark holds on the other process."""
    a, b = cluster.a, cluster.b
    alice, bob, carol = await in_thread(users, b, "alice", "bob", "carol")
    gid = await in_thread(create_group, b.http_url, alice, [bob, carol])
    ca = await connected(a.ws_url, alice)
    cb = await connected(b.ws_url, bob)
    cc = await connected(b.compat_ws_url, carol)
    try:
        hi = await ca.send_msg(gid, "hi from A")
        for client in (cb, cc):
            push = await client.next_push()
            assert push["event"] == "Msg"
            assert push["body"]["msgId"] == hi["serverMsgId"]
            assert (push["body"]["uid"], push["body"]["seq"]) == (alice.uid, 1)

        hey = await cb.send_msg(gid, "hey from B")
        for client in (ca, cc):
            push = await client.next_push()
            assert push["body"]["msgId"] == hey["serverMsgId"]
            assert (push["body"]["uid"], push["body"]["seq"]) == (bob.uid, 2)

        ack = await cb.request("Ack", gid=gid, msg_id=hi["serverMsgId"], cmid="ack-1")
        assert ack == {"clientMsgId": "ack-1", "serverMsgId": None, "kind": "Ack", "content": "Ok"}

        read = await cc.request("Read", gid=gid, msg_id=hey["serverMsgId"], cmid="read-1")
        assert read == {
            "clientMsgId": "read-1",
            "serverMsgId": hey["serverMsgId"],
            "kind": "Ack",
            "content": "Ok",
        }
        for client in (ca, cb):
            receipt = await client.next_push()
            assert receipt == {
                "event": "Read",
                "body": {
                    "kind": "Text",
                    "uid": carol.uid,
                    "gid": gid,
                    "msgId": hey["serverMsgId"],
                    "content": "",
                    "clientMsgId": "read-1",
                },
            }
        assert await cc.quiet() == []
        assert await ca.quiet(0.1) == [] and await cb.quiet(0.1) == []

        # carol read up to bob's message on B; A's REST sees it in the unread counts.
        chats = await in_thread(
            api,
            a.http_url,
            "message/chat/list",
            {"uid": carol.uid, "page": 1, "size": 10},
            carol.token,
        )
        assert [(c["group"]["id"], c["unread"]) for c in chats] == [(gid, 0)]

        # bob acked (and sent) everything: a new connection on A syncs nothing to him.
        cb2 = await connected(a.ws_url, bob, "bob-on-A")
        try:
            assert await cb2.quiet() == []
        finally:
            await cb2.close()
    finally:
        for client in (ca, cb, cc):
            await client.close()


async def test_membership_changes_apply_live_across_processes(cluster):
    """Members added through REST on A start receiving on their open connection on B;
    removed through REST on B, they stop at once and may no longer send or read."""
    a, b = cluster.a, cluster.b
    alice, bob, carol = await in_thread(users, a, "alice", "bob", "carol")
    gid = await in_thread(create_group, a.http_url, alice, [bob])
    ca = await connected(a.ws_url, alice)
    cb = await connected(b.ws_url, bob)
    cc = await connected(b.ws_url, carol)
    try:
        before = await ca.send_msg(gid, "before carol")
        assert (await cb.next_push())["body"]["msgId"] == before["serverMsgId"]

        change = {"gid": gid, "uids": [carol.uid], "opType": 1}
        assert await in_thread(api, a.http_url, "group/user/change", change, alice.token)
        welcome = await ca.send_msg(gid, "welcome carol")
        for client in (cb, cc):
            push = await client.next_push()
            assert push["body"]["msgId"] == welcome["serverMsgId"]
            assert push["body"]["seq"] == 2
        # History before joining is not pushed to carol.
        assert await cc.quiet() == []

        from_carol = await cc.send_msg(gid, "thanks")
        assert (await ca.next_push())["body"]["msgId"] == from_carol["serverMsgId"]
        assert (await cb.next_push())["body"]["msgId"] == from_carol["serverMsgId"]

        change = {"gid": gid, "uids": [carol.uid], "opType": 2}
        assert await in_thread(api, b.http_url, "group/user/change", change, alice.token)
        after = await ca.send_msg(gid, "carol is gone")
        assert (await cb.next_push())["body"]["msgId"] == after["serverMsgId"]
        assert await cc.quiet() == []
        refused = await cc.request("Msg", gid=gid, content="still here?")
        assert refused["content"] == "not_member"
        with pytest.raises(ApiError) as error:
            await in_thread(history, a.http_url, carol, gid)
        assert error.value.status == 403
        stored = await in_thread(history, b.http_url, alice, gid)
        assert [m["content"] for m in stored] == [
            "before carol",
            "welcome carol",
            "thanks",
            "carol is gone",
        ]
    finally:
        for client in (ca, cb, cc):
            await client.close()


async def test_offline_sync_across_processes(cluster):
    """Messages sent on A while bob is offline are synced at his Login on B, oldest
    first; what he Acks there is not synced again at his next Login on A."""
    a, b = cluster.a, cluster.b
    alice, bob, carol = await in_thread(users, a, "alice", "bob", "carol")
    gid = await in_thread(create_group, a.http_url, alice, [bob, carol])
    ca = await connected(a.ws_url, alice)
    cc = await connected(b.ws_url, carol)
    try:
        acks = [await ca.send_msg(gid, f"offline {n}") for n in range(3)]
        ids = [ack["serverMsgId"] for ack in acks]
        live = await cc.collect_pushes(3)
        assert [p["body"]["msgId"] for p in live] == ids

        cb = await connected(b.ws_url, bob)
        try:
            synced = await cb.collect_pushes(3)
            assert [p["body"]["msgId"] for p in synced] == ids
            assert [p["body"]["seq"] for p in synced] == [1, 2, 3]
            assert [p["body"]["content"] for p in synced] == ["offline 0", "offline 1", "offline 2"]
            assert (await cb.request("Ack", gid=gid, msg_id=ids[1]))["content"] == "Ok"
        finally:
            await cb.close()

        cb = await connected(a.compat_ws_url, bob, "bob-on-A")
        try:
            again = await cb.collect_pushes(1)
            assert [p["body"]["msgId"] for p in again] == ids[2:]
            assert await cb.quiet() == []
        finally:
            await cb.close()
    finally:
        await ca.close()
        await cc.close()


async def send_burst(client: WsClient, gid: int, count: int) -> list[int]:
    """Pipelined sends (all frames out, then the acks): the server sees them as fast
    as the socket carries them."""
    cmids = [f"{client.name}-{n}-{uuid.uuid4().hex[:6]}" for n in range(count)]
    for cmid in cmids:
        await client.send_raw(
            _msg_frame(client.uid, gid, f"{client.name} {cmid}", cmid),
        )
    ids = []
    for cmid in cmids:
        ack = await client.ack_for(cmid, timeout=60)
        assert ack["content"] == "Ok", ack
        ids.append(ack["serverMsgId"])
    return ids


def _msg_frame(uid: int, gid: int, content: str, cmid: str) -> str:
    return frame("Msg", uid, gid=gid, content=content, cmid=cmid)


async def test_seq_order_under_concurrent_senders_on_both_processes(cluster):
    """Three members on two processes send at once: every receiving connection, on
    either process, gets every other member's messages in increasing seq, no gaps (a
    pure receiver sees 1..N exactly), no duplicates."""
    a, b = cluster.a, cluster.b
    per_sender = 40
    alice, dave, bob, carol, erin = await in_thread(
        users, a, "alice", "dave", "bob", "carol", "erin"
    )
    gid = await in_thread(create_group, b.http_url, alice, [dave, bob, carol, erin])
    senders = [
        await connected(a.ws_url, alice),
        await connected(b.ws_url, bob),
        await connected(b.compat_ws_url, carol),
    ]
    receivers = [await connected(a.ws_url, dave), await connected(b.ws_url, erin)]
    try:
        sent = await asyncio.gather(*(send_burst(s, gid, per_sender) for s in senders))
        total = per_sender * len(senders)
        all_ids = sorted(i for ids in sent for i in ids)
        assert len(set(all_ids)) == total

        for receiver in receivers:
            pushes = await receiver.collect_pushes(total, timeout=60)
            assert [p["body"]["seq"] for p in pushes] == list(range(1, total + 1)), receiver.name
            assert [p["body"]["msgId"] for p in pushes] == all_ids
        for sender, own in zip(senders, sent, strict=True):
            pushes = await sender.collect_pushes(total - per_sender, timeout=60)
            seqs = [p["body"]["seq"] for p in pushes]
            assert seqs == sorted(set(seqs)), sender.name
            got = {p["body"]["msgId"] for p in pushes}
            assert got.isdisjoint(own)
            assert sorted(got | set(own)) == all_ids
        for client in (*senders, *receivers):
            assert await client.quiet(0.3) == []
    finally:
        for client in (*senders, *receivers):
            await client.close()


async def test_kill_9_of_one_process_loses_no_acked_message(cluster):
    """Simulates a crash of process A (SIGKILL) right after it acked 30 messages: B
    keeps serving its connections, the next message fills whatever live push the crash
    swallowed (gap repair from the database), history on B has every acked message, and
    alice, back on the restarted A, is synced what she missed."""
    a, b = cluster.a, cluster.b
    alice, bob, carol = await in_thread(users, a, "alice", "bob", "carol")
    gid = await in_thread(create_group, a.http_url, alice, [bob, carol])
    ca = await connected(a.ws_url, alice)
    cb = await connected(b.ws_url, bob)
    cc = await connected(b.ws_url, carol)
    try:
        acked = await send_burst(ca, gid, 30)
        await in_thread(a.kill)
        assert a.process.returncode == -9

        after = await cc.send_msg(gid, "after the crash")
        pushes = await cb.collect_pushes(31, timeout=30)
        assert [p["body"]["msgId"] for p in pushes] == [*acked, after["serverMsgId"]]
        assert [p["body"]["seq"] for p in pushes] == list(range(1, 32))
        assert await cb.quiet(0.3) == []
        # carol's own message came after them: she has all 30 too, in order.
        pushes = await cc.collect_pushes(30, timeout=30)
        assert [p["body"]["msgId"] for p in pushes] == acked
        assert await cc.quiet(0.3) == []

        stored = await in_thread(history, b.http_url, bob, gid)
        assert [m["id"] for m in stored] == [*acked, after["serverMsgId"]]

        await in_thread(a.start)
        ca2 = await connected(a.ws_url, alice, "alice-again")
        try:
            synced = await ca2.collect_pushes(1)
            assert synced[0]["body"]["msgId"] == after["serverMsgId"]
            again = await ca2.send_msg(gid, "back")
            assert (await cb.next_push())["body"]["msgId"] == again["serverMsgId"]
            assert (await cc.next_push())["body"]["msgId"] == again["serverMsgId"]
        finally:
            await ca2.close()
    finally:
        for client in (ca, cb, cc):
            await client.close()


async def test_idle_connection_survives_a_quiet_layer(cluster):
    """A logged-in connection with no layer traffic for longer than the Redis client's
    read timeout (redis-py's default is 5 s, as long as the core layer's blocking pop)
    stays open, logs no layer failure, and still receives the next message."""
    a, b = cluster.a, cluster.b
    alice, bob = await in_thread(users, a, "alice", "bob")
    gid = await in_thread(create_group, a.http_url, alice, [bob])
    cb = await connected(b.ws_url, bob)
    ca = await connected(a.ws_url, alice)
    try:
        await asyncio.sleep(7)
        assert cb.is_open and ca.is_open
        ack = await ca.send_msg(gid, "still there?")
        assert (await cb.next_push())["body"]["msgId"] == ack["serverMsgId"]
        for server in (a, b):
            log = server.log_text()
            assert "layer_receive_failed" not in log
            assert "Exception inside application" not in log
    finally:
        await ca.close()
        await cb.close()


async def test_a_recall_an_edit_and_a_reaction_reach_the_other_process(cluster):
    """v2 changes cross processes like messages: alice on A recalls, edits and reacts;
    bob on B gets each push in the group's seq order, and alice's other device on B
    too."""
    a, b = cluster.a, cluster.b
    alice, bob = await in_thread(users, a, "alice", "bob")
    gid = await in_thread(create_group, a.http_url, alice, [bob])
    phone = await connected(a.ws_url, alice, "alice-phone")
    tablet = await connected(b.ws_url, alice, "alice-tablet")
    cb = await connected(b.ws_url, bob)
    try:
        kept = (await phone.send_msg(gid, "keep me, fix me"))["serverMsgId"]
        gone = (await phone.send_msg(gid, "wrong chat"))["serverMsgId"]
        for client in (cb, tablet):
            await client.collect_pushes(2)
        for event, fields in (
            ("Recall", {"msg_id": gone}),
            ("Edit", {"msg_id": kept, "content": "kept, fixed"}),
            ("React", {"msg_id": kept, "content": "👍"}),
        ):
            ack = await phone.request(event, gid=gid, **fields)
            assert ack["content"] == "Ok", ack
        for client in (cb, tablet):
            pushes = await client.collect_pushes(3)
            assert [(p["event"], p["body"]["msgId"], p["body"]["seq"]) for p in pushes] == [
                ("Recall", gone, 3),
                ("Edit", kept, 4),
                ("React", kept, 5),
            ]
            assert pushes[1]["body"]["content"] == "kept, fixed"
        assert await phone.quiet(0.5) == []
    finally:
        for client in (phone, tablet, cb):
            await client.close()
