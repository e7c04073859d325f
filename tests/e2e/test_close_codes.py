"""Every close the server starts, through a real server process: rim's own
(`manage.py serve`) and stock daphne, the deployment Channels documents. An
application may only close with 1000 or 3000-4999 (RFC 6455 §7.4.2, enforced by
autobahn), so these are the codes of docs/protocol.md's "Close codes"; a 1xxx code
asked of autobahn by the application would become a 1011 and a traceback.

Each refused frame gets exactly one ack, and nothing after the close."""

import asyncio
import contextlib
import json
import uuid

import pytest
from websockets.exceptions import ConnectionClosed

from tests.e2e.conftest import WsClient, connected, env_for_tests, in_thread, new_user, server_pool
from tests.live import RIM_SERVER, STOCK_DAPHNE, frame

pytestmark = pytest.mark.e2e

RATE, BURST = 1, 5
LOGIN_TIMEOUT = 1.5
IDLE_TIMEOUT = 3.0
TAIL_CHECK = 0.5
MAX_FRAME = 16384


@pytest.fixture(scope="module", params=[RIM_SERVER, STOCK_DAPHNE])
def server(request, tmp_path_factory):
    with server_pool(tmp_path_factory.mktemp(request.param)) as pool:
        daphne = pool.new(
            request.param,
            kind=request.param,
            env=env_for_tests(
                RIM_RATE_LIMIT=str(RATE),
                RIM_RATE_BURST=str(BURST),
                RIM_LOGIN_TIMEOUT=str(LOGIN_TIMEOUT),
                RIM_IDLE_TIMEOUT=str(IDLE_TIMEOUT),
                RIM_TAIL_CHECK_INTERVAL=str(TAIL_CHECK),
                RIM_MAX_CONTENT=str(MAX_FRAME // 4),
                RIM_MAX_FRAME=str(MAX_FRAME),
            ),
        )
        daphne.start()
        yield daphne


async def test_rate_abuse_gets_one_ack_per_frame_then_close_4008(server):
    user = await in_thread(new_user, server.http_url, "flood")
    client = await connected(server.ws_url, user)  # the Login took one token
    cmids = [uuid.uuid4().hex for _ in range(40)]
    for n, cmid in enumerate(cmids):
        await client.ws.send(frame("Msg", user.uid, gid=1, content=f"m{n}", cmid=cmid))
    code = await client.closed_with()
    assert code == 4008
    acks = [client.acks[cmid]["content"] for cmid in cmids if cmid in client.acks]
    # The burst's last 4 tokens, then a burst of refusals, then the close: one ack
    # for each frame read before the close, none after it, never a server_error.
    assert acks == ["not_member"] * (BURST - 1) + ["rate_limited"] * BURST
    log = server.log_text()
    assert "Traceback" not in log and "server_error" not in log


async def test_a_socket_that_never_logs_in_is_closed_with_4002(server):
    client = await WsClient.open(server.ws_url, "anonymous")
    started = asyncio.get_running_loop().time()
    # Hearts keep it from falling idle, not from the login deadline; the close may
    # come while one is on its way.
    with contextlib.suppress(ConnectionClosed):
        while True:
            await client.ws.send(frame("Heart", None))
            await asyncio.sleep(0.5)
    assert await client.closed_with() == 4002
    assert client.acks and all(ack["content"] == "Ok" for ack in client.acks.values())
    assert asyncio.get_running_loop().time() - started >= LOGIN_TIMEOUT - 0.1


async def test_a_silent_connection_is_closed_with_4000(server):
    user = await in_thread(new_user, server.http_url, "silent")
    client = await connected(server.ws_url, user)
    assert await client.closed_with(timeout=IDLE_TIMEOUT + 5) == 4000


async def test_a_deactivated_users_connection_is_closed_with_4001(server):
    """Deactivated from another process (the command line): the event cannot reach
    this process's in-memory layer, and the tail check on the next Heart finds it."""
    user = await in_thread(new_user, server.http_url, "gone")
    client = await connected(server.ws_url, user)
    deactivating = asyncio.ensure_future(in_thread(server.manage, "deactivate_user", user.account))
    # Hearts keep the connection from falling idle; the one after the deactivation
    # has committed closes it.
    with contextlib.suppress(ConnectionClosed):
        while not deactivating.done():
            await client.ws.send(frame("Heart", user.uid))
            await asyncio.sleep(1.0)
        await deactivating
        await client.ws.send(frame("Heart", user.uid))
    assert await client.closed_with() == 4001
    assert all(ack["content"] == "Ok" for ack in client.acks.values())


async def test_a_frame_over_the_limit_closes_only_that_connection(server):
    """rim's server refuses it in its transport with 1009 (PROTOCOL.md §4); under
    stock daphne the application sees it and may only close with 4009."""
    user = await in_thread(new_user, server.http_url, "big")
    other = await in_thread(new_user, server.http_url, "fine")
    big = await connected(server.ws_url, user)
    fine = await connected(server.ws_url, other)
    await big.ws.send(json.dumps({"event": "Heart", "body": {"content": "x" * MAX_FRAME}}))
    expected = 1009 if server.kind == RIM_SERVER else 4009
    assert await big.closed_with() == expected
    assert (await fine.request("Heart"))["content"] == "Ok"
    await fine.close()


@pytest.fixture(scope="module")
def capped_server(tmp_path_factory):
    with server_pool(tmp_path_factory.mktemp("capped")) as pool:
        daphne = pool.new("capped", env_for_tests(RIM_MAX_CONNECTIONS_PER_IP="3"))
        daphne.start()
        yield daphne


async def test_connections_over_the_per_address_cap_are_closed_with_4003(capped_server):
    first = [await WsClient.open(capped_server.ws_url, f"c{n}") for n in range(3)]
    extra = await WsClient.open(capped_server.ws_url, "extra")
    assert await extra.closed_with() == 4003
    for client in first:
        assert (await client.request("Heart"))["content"] == "Ok"
    await first[0].close()
    await asyncio.sleep(0.2)
    again = await WsClient.open(capped_server.ws_url, "again")
    assert (await again.request("Heart"))["content"] == "Ok"
    for client in [*first[1:], again]:
        await client.close()
