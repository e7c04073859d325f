"""benchmarks/delayproxy.py: it adds the round trip it is asked for, pipelines instead
of serialising round trips, keeps each connection's bytes in order, and refuses
non-loopback addresses. An echo server in the same loop stands in for PostgreSQL."""

import asyncio
import random
import time

import pytest

from benchmarks.delayproxy import Proxy, parse_addr

RTT_MS = 40


async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(65536):
        writer.write(data)
        await writer.drain()
    writer.close()


@pytest.fixture
async def proxied():
    """(port of a proxy in front of an echo server, the proxy)"""
    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    target = f"127.0.0.1:{server.sockets[0].getsockname()[1]}"
    proxy = await Proxy.start([("127.0.0.1:0", target)], RTT_MS)
    yield proxy.ports[0], proxy
    await proxy.close()
    server.close()


async def test_a_round_trip_costs_the_rtt_and_pipelined_ones_overlap(proxied):
    port, _ = proxied
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    t0 = time.perf_counter()
    writer.write(b"ping")
    assert await reader.readexactly(4) == b"ping"
    one = time.perf_counter() - t0
    assert one >= RTT_MS / 1000

    # Ten round trips in flight at once take about one RTT, not ten.
    t0 = time.perf_counter()
    for i in range(10):
        writer.write(b"%02d" % i)
        await asyncio.sleep(0.001)
    assert await reader.readexactly(20) == b"".join(b"%02d" % i for i in range(10))
    ten = time.perf_counter() - t0
    # One after another they would take 10 RTTs; the margin is for a loaded machine
    # (the test processes share two cores).
    assert RTT_MS / 1000 <= ten < 5 * RTT_MS / 1000
    writer.close()


async def test_bytes_keep_their_order_per_connection_under_concurrent_writes(proxied):
    port, proxy = proxied
    rng = random.Random(7)

    async def one(n: int) -> bool:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        sent = bytearray()
        for k in range(200):
            chunk = f"<{n}:{k}>".encode() * rng.randint(1, 40)
            sent += chunk
            writer.write(chunk)
            if k % 20 == 0:
                await asyncio.sleep(0)
        got = await reader.readexactly(len(sent))
        writer.close()
        return got == sent

    assert all(await asyncio.gather(*(one(n) for n in range(8))))
    assert proxy.stats.connections == 8


@pytest.mark.parametrize("addr", ["10.0.0.1:5432", "example.com:80", "0.0.0.0:1"])
def test_only_loopback_addresses(addr):
    with pytest.raises(ValueError, match="loopback"):
        parse_addr(addr, "target")
    assert parse_addr("[::1]:5432", "target") == ("::1", 5432)
