"""End to end on the embedded stack: one server process (on the main and the
rim-compatible port) with a file SQLite database and the in-memory layer, spoken to by
a real WebSocket client. Every test runs against rim's server (`manage.py serve`) and
against stock daphne (`daphne rimsite.asgi:application`), the deployment Channels
documents.

One server of each serves the whole module (each test registers its own users); the
crash test kills and restarts it, which is what a restart looks like to every later
test too.
"""

import asyncio
import contextlib
import json
import re
import secrets
import sqlite3

import pytest
from websockets.exceptions import InvalidStatus

from tests.e2e.conftest import (
    WsClient,
    assert_no_token,
    connected,
    create_group,
    env_for_tests,
    history,
    in_thread,
    new_user,
    server_pool,
    use_token_everywhere,
)
from tests.live import RIM_SERVER, STOCK_DAPHNE

pytestmark = pytest.mark.e2e

CREATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")
MAX_CONTENT = 4096
MAX_FRAME = 4 * MAX_CONTENT


@pytest.fixture(scope="module", params=[RIM_SERVER, STOCK_DAPHNE])
def server(request, tmp_path_factory):
    with server_pool(tmp_path_factory.mktemp("sqlite-e2e")) as pool:
        daphne = pool.new(
            request.param,
            env_for_tests(RIM_MAX_CONTENT=str(MAX_CONTENT), RIM_MAX_FRAME=str(MAX_FRAME)),
            kind=request.param,
        )
        daphne.start()
        yield daphne


def endpoint(server, which: str) -> str:
    return {
        "main /ws": server.ws_url,
        "main /": f"ws://127.0.0.1:{server.port}/",
        "compat /": server.compat_ws_url,
    }[which]


def seed_frame(event: str, body: dict) -> str:
    """A frame exactly as PROTOCOL.md's examples write it (key order included)."""
    return json.dumps({"event": event, "body": body})


@pytest.mark.parametrize(
    ("sender_at", "receiver_at"),
    [("main /ws", "compat /"), ("compat /", "main /ws"), ("main /", "main /")],
)
async def test_seed_examples_on_every_endpoint(server, sender_at, receiver_at):
    """PROTOCOL.md §2's examples, byte for byte as rim's client sends them: the Login
    ack is exactly four fields, the Msg ack carries an integer serverMsgId, and the peer
    receives the push with msgId, seq and createTime."""
    alice = await in_thread(new_user, server.http_url, "alice")
    bob = await in_thread(new_user, server.http_url, "bob")
    gid = await in_thread(create_group, server.http_url, alice, [bob])
    sender = await WsClient.open(endpoint(server, sender_at), "alice")
    receiver = await WsClient.open(endpoint(server, receiver_at), "bob")
    try:
        for client, user, cmid in ((sender, alice, "l-alice"), (receiver, bob, "l-bob")):
            # rim's client sends gid 3 with its Login; the server ignores it.
            await client.send_raw(
                seed_frame(
                    "Login",
                    {
                        "kind": "Text",
                        "uid": user.uid,
                        "gid": 3,
                        "content": user.token,
                        "clientMsgId": cmid,
                        "msgId": None,
                    },
                )
            )
            ack = await client.ack_for(cmid)
            assert ack == {"clientMsgId": cmid, "serverMsgId": None, "kind": "Ack", "content": "Ok"}
            assert list(ack) == ["clientMsgId", "serverMsgId", "kind", "content"]

        await sender.send_raw(
            seed_frame(
                "Msg",
                {
                    "kind": "Text",
                    "uid": alice.uid,
                    "gid": gid,
                    "content": "Hello World",
                    "clientMsgId": "badc6d33aebfd40ab3cda",
                    "msgId": None,
                },
            )
        )
        ack = await sender.ack_for("badc6d33aebfd40ab3cda")
        assert set(ack) == {"clientMsgId", "serverMsgId", "kind", "content"}
        assert ack["kind"] == "Ack" and ack["content"] == "Ok"
        assert type(ack["serverMsgId"]) is int and ack["serverMsgId"] > 0

        push = await receiver.next_push()
        assert push["event"] == "Msg"
        body = push["body"]
        assert CREATE_TIME.match(body.pop("createTime")), push
        assert body == {
            "kind": "Text",
            "uid": alice.uid,
            "gid": gid,
            "content": "Hello World",
            "clientMsgId": "badc6d33aebfd40ab3cda",
            "msgId": ack["serverMsgId"],
            "seq": 1,
        }
        # Never echoed to the sending connection.
        assert await sender.quiet(0.5) == []
    finally:
        await sender.close()
        await receiver.close()


async def test_kill_9_after_50_acks_loses_nothing(server):
    """Simulates a crash (SIGKILL: no shutdown code runs) right after the 50th ack:
    every acked message is in REST history after the restart, and the recipient, who
    was offline, gets all 50 oldest first at its next Login."""
    alice = await in_thread(new_user, server.http_url, "alice")
    bob = await in_thread(new_user, server.http_url, "bob")
    gid = await in_thread(create_group, server.http_url, alice, [bob])
    sender = await connected(server.ws_url, alice)
    # Pipelined, as a busy client does: 50 frames out, then their acks.
    cmids = [f"crash-{n}" for n in range(50)]
    for n, cmid in enumerate(cmids):
        await sender.send_raw(
            json.dumps(
                {
                    "event": "Msg",
                    "body": {
                        "kind": "Text",
                        "uid": alice.uid,
                        "gid": gid,
                        "content": f"message {n}",
                        "clientMsgId": cmid,
                        "msgId": None,
                    },
                }
            )
        )
    acks = [await sender.ack_for(cmid) for cmid in cmids]
    assert all(ack["content"] == "Ok" for ack in acks), acks
    await in_thread(server.kill)
    assert server.process.returncode == -9
    acked_ids = [ack["serverMsgId"] for ack in acks]
    await in_thread(server.start)

    stored = await in_thread(history, server.http_url, bob, gid)
    assert [m["id"] for m in stored] == acked_ids
    assert [m["content"] for m in stored] == [f"message {n}" for n in range(50)]

    receiver = await connected(server.compat_ws_url, bob)
    try:
        synced = await receiver.collect_pushes(50)
        assert [p["body"]["msgId"] for p in synced] == acked_ids
        assert [p["body"]["seq"] for p in synced] == list(range(1, 51))
        assert [p["body"]["clientMsgId"] for p in synced] == cmids
        assert await receiver.quiet(0.5) == []
    finally:
        await receiver.close()


async def test_sent_messages_enter_the_search_index_in_the_background(server):
    """SQLite indexes new messages for search in batches, every second by default
    (RIM_SEARCH_INDEX_INTERVAL), not in each send's transaction: soon after a send, with
    no search to bring it up to date, the server's index holds the message."""
    alice = await in_thread(new_user, server.http_url, "alice")
    bob = await in_thread(new_user, server.http_url, "bob")
    gid = await in_thread(create_group, server.http_url, alice, [bob])
    sender = await connected(server.ws_url, alice)
    word = f"needle{secrets.token_hex(4)}"
    try:
        msg_id = (await sender.send_msg(gid, f"a {word} in the haystack"))["serverMsgId"]
    finally:
        await sender.close()

    def indexed() -> bool:
        with contextlib.closing(sqlite3.connect(server.workdir / "db.sqlite3")) as db:
            (upto,) = db.execute("SELECT upto FROM chat_message_search_upto").fetchone()
            found = db.execute(
                "SELECT rowid FROM chat_message_search WHERE chat_message_search MATCH ?",
                [word],
            ).fetchall()
        return upto >= msg_id and found == [(msg_id,)]

    async with asyncio.timeout(10):
        while not await in_thread(indexed):
            await asyncio.sleep(0.2)


async def test_frame_over_transport_limit_closes_only_that_connection(server):
    """A frame over RIM_MAX_FRAME closes its connection with 1009 (under stock daphne,
    whose transport does not know rim's limit, the application closes it with 4009);
    the server and another connection (which then sends and receives) carry on. A
    content just over RIM_MAX_CONTENT, inside the frame limit, is an error ack, not a
    close."""
    alice = await in_thread(new_user, server.http_url, "alice")
    bob = await in_thread(new_user, server.http_url, "bob")
    gid = await in_thread(create_group, server.http_url, alice, [bob])
    big = await connected(server.ws_url, alice, "alice-big")
    other = await connected(server.ws_url, alice, "alice-other")
    peer = await connected(server.compat_ws_url, bob)
    try:
        ack = await big.request("Msg", gid=gid, content="x" * (MAX_CONTENT + 1))
        assert ack["content"] == "content_too_large"
        assert big.is_open

        await big.send_raw(
            json.dumps(
                {
                    "event": "Msg",
                    "body": {
                        "kind": "Text",
                        "uid": alice.uid,
                        "gid": gid,
                        "content": "y" * (MAX_FRAME + 1),
                        "clientMsgId": "too-big",
                        "msgId": None,
                    },
                }
            )
        )
        assert await big.closed_with() == (1009 if server.kind == RIM_SERVER else 4009)

        assert (await other.request("Heart"))["content"] == "Ok"
        ack = await other.send_msg(gid, "still here")
        push = await peer.next_push()
        assert push["body"]["msgId"] == ack["serverMsgId"]
        assert push["body"]["content"] == "still here"
        stored = await in_thread(history, server.http_url, alice, gid)
        assert [m["content"] for m in stored] == ["still here"]
    finally:
        for client in (big, other, peer):
            await client.close()


async def test_server_log_never_contains_a_token(server):
    """A session that uses its token everywhere a token travels leaves no trace of it
    in the server's output."""
    alice = await use_token_everywhere(server)
    log = server.log_text()
    # The log is really being written: the login and the refusal above are in it.
    assert "event=ws_login" in log and f"uid={alice.uid}" in log
    assert "code=auth_failed" in log
    assert_no_token(log, alice.token)


@pytest.mark.parametrize("port_of", ["main", "compat"])
async def test_foreign_origin_is_refused_native_and_same_site_accepted(server, port_of):
    """A browser page of another site may not open a WebSocket (cross-site WebSocket
    hijacking); rim's native clients send no Origin and are let in, as is the server's
    own web client (Origin http://127.0.0.1:<port>)."""
    port = server.port if port_of == "main" else server.compat_port
    url = server.ws_url if port_of == "main" else server.compat_ws_url
    alice = await in_thread(new_user, server.http_url, "alice")

    with pytest.raises(InvalidStatus) as refused:
        await WsClient.open(url, "evil", origin="http://evil.example")
    assert refused.value.response.status_code == 403

    for origin in (None, f"http://127.0.0.1:{port}", f"http://127.0.0.1:{server.port}"):
        client = await WsClient.open(url, "alice", origin=origin)
        try:
            await client.login(alice.uid, alice.token)
            assert (await client.request("Heart"))["content"] == "Ok"
        finally:
            await client.close()
