"""rim's server (`manage.py serve`) under clients that misbehave and at shutdown:

- a client that never reads cannot grow the server: past RIM_WS_BACKLOG_MAX of
  unsent pushes its connection is closed with 4004, and its memory is given back;
- SIGTERM under load: every frame already taken is answered, every WebSocket is
  closed with 1001, the process exits in time, and after the clients' retries every
  acked message is stored once and nothing twice.
"""

import asyncio
import itertools
import os
import signal
import time
import uuid
from collections import deque

import pytest
from websockets.exceptions import ConnectionClosed

from tests.e2e.conftest import (
    WsClient,
    connected,
    create_group,
    env_for_tests,
    history,
    in_thread,
    new_user,
    server_pool,
)
from tests.e2e.test_wire_frames import RawSocket, client_frame, event
from tests.live import api, frame

pytestmark = pytest.mark.e2e

BACKLOG_MAX = 256 * 1024
SHUTDOWN_TIMEOUT = 8.0


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


@pytest.fixture
def server(tmp_path):
    with server_pool(tmp_path) as pool:
        daphne = pool.new(
            "daphne",
            env_for_tests(
                RIM_WS_BACKLOG_MAX=str(BACKLOG_MAX),
                RIM_WS_BACKLOG_GRACE="30",
                RIM_SHUTDOWN_TIMEOUT=str(SHUTDOWN_TIMEOUT),
            ),
        )
        daphne.start()
        yield daphne


async def flood(sender: WsClient, gid: int, count: int, size: int) -> None:
    """`count` messages of `size` bytes, 16 in flight."""
    in_flight: deque[str] = deque()
    for n in range(count):
        cmid = uuid.uuid4().hex
        content = f"{n:06d}" + "x" * (size - 6)
        await sender.ws.send(frame("Msg", sender.uid, gid=gid, content=content, cmid=cmid))
        in_flight.append(cmid)
        if len(in_flight) == 16 or n == count - 1:
            while in_flight:
                assert (await sender.ack_for(in_flight.popleft()))["content"] == "Ok"


async def test_a_client_that_never_reads_is_closed_with_4004_and_its_memory_freed(server):
    sender_user = await in_thread(new_user, server.http_url, "loud")
    sender = await connected(server.ws_url, sender_user)
    pid = server.process.pid
    rss = []
    for round_ in range(3):
        sleeper, user = await sleepy_member(server)
        gid = await in_thread(create_group, server.http_url, sender_user, [user])
        before = rss_kib(pid)
        await flood(sender, gid, 2500, 2048)  # 5 MB, far over the backlog cap
        # It was cut off from new pushes: they did not pile up in the server.
        assert rss_kib(pid) - before < 12 * 1024, (before, rss_kib(pid))
        assert await sleeper.close_code() == 4004
        sleeper.close()
        await asyncio.sleep(0.5)
        rss.append(rss_kib(pid))
        # Nothing is lost: what it missed is stored, and its next Login syncs it.
        stored = await in_thread(history, server.http_url, user, gid, 100)
        assert len(stored) == 100 and stored[-1]["content"].startswith("002499")
        if round_ == 0:
            again = await connected(server.ws_url, user)
            synced = await again.collect_pushes(100)
            assert synced[-1]["body"]["content"].startswith("002499")
            await again.close()
    # Three rounds of 5 MB each: the server did not keep them.
    assert rss[2] - rss[0] < 8 * 1024, rss
    assert "event=ws_backlog_close" in server.log_text()


async def sleepy_member(server) -> tuple[RawSocket, object]:
    """A logged-in client with a small receive buffer that reads nothing more."""
    user = await in_thread(new_user, server.http_url, "sleepy")
    sock = await RawSocket.open(server.port, receive_buffer=4096)
    cmid, login = event("Login", user.uid, content=user.token)
    await sock.write(client_frame(login))
    ack = await sock.read_json()
    assert (ack["clientMsgId"], ack["content"]) == (cmid, "Ok")
    return sock, user


async def test_sigterm_under_load_answers_what_it_took_closes_with_1001_and_loses_nothing(
    server,
):
    users = [await in_thread(new_user, server.http_url, f"busy{n}") for n in range(4)]
    gid = await in_thread(create_group, server.http_url, users[0], users[1:])
    clients = [await connected(server.ws_url, user) for user in users]
    sent: dict[str, str] = {}  # clientMsgId → content, every frame sent
    acked: dict[str, int] = {}  # clientMsgId → serverMsgId

    async def keep_sending(client: WsClient, user) -> int | None:
        """Send until the server closes; the close code."""
        for n in itertools.count():
            cmid = uuid.uuid4().hex
            content = f"{user.account}-{n}"
            sent[cmid] = content
            try:
                await client.ws.send(frame("Msg", user.uid, gid=gid, content=content, cmid=cmid))
                ack = await client.ack_for(cmid, timeout=SHUTDOWN_TIMEOUT + 5)
            except ConnectionClosed as closed:
                return closed.rcvd.code if closed.rcvd else None
            assert ack["content"] == "Ok", ack
            acked[cmid] = ack["serverMsgId"]
        return None

    senders = asyncio.gather(*(keep_sending(c, u) for c, u in zip(clients, users, strict=True)))
    await asyncio.sleep(1.5)
    started = time.monotonic()
    os.kill(server.process.pid, signal.SIGTERM)
    codes = await senders
    exit_code = await in_thread(server.process.wait, SHUTDOWN_TIMEOUT + 5)
    assert time.monotonic() - started < SHUTDOWN_TIMEOUT + 2
    assert exit_code == 0
    assert codes == [1001] * len(clients)
    assert len(acked) > 20
    assert "event=shutdown_done drained=True" in server.log_text()

    # The clients come back (to a new process) and retry what was not acked.
    await in_thread(server.start)
    retried = [cmid for cmid in sent if cmid not in acked]
    by_content = {content: cmid for cmid, content in sent.items()}
    back = [await connected(server.ws_url, user) for user in users]
    for cmid in retried:
        author = sent[cmid].split("-")[0]
        client = back[[u.account for u in users].index(author)]
        ack = await client.request("Msg", gid=gid, content=sent[cmid], cmid=cmid)
        assert ack["content"] == "Ok"
        acked[cmid] = ack["serverMsgId"]
    for client in back:
        await client.close()

    stored = await in_thread(stored_messages, server, users[0], gid)
    contents = [m["content"] for m in stored]
    assert len(contents) == len(set(contents)) == len(sent)  # each once, none lost
    for message in stored:
        assert acked[by_content[message["content"]]] == message["id"]


def stored_messages(server, user, gid: int) -> list[dict]:
    messages, page = [], 1
    while True:
        batch = history_page(server, user, gid, page)
        messages += batch
        if len(batch) < 100:
            return messages
        page += 1


def history_page(server, user, gid: int, page: int) -> list[dict]:
    entries = api(
        server.http_url, "message/history", {"gid": gid, "page": page, "size": 100}, user.token
    )
    return [entry["msg"] for entry in entries]
