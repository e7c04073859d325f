#!/usr/bin/env python3
"""A TCP delay line for loopback services: every byte arrives `--rtt` / 2 ms later in
each direction, so that a round trip through it costs `--rtt` ms more than without.

    .venv/bin/python benchmarks/delayproxy.py --listen 127.0.0.1:15432 \
        --target 127.0.0.1:5432 --rtt 1
    # several routes in one process: --listen and --target pair up in order
    .venv/bin/python benchmarks/delayproxy.py --rtt 1 \
        --listen 127.0.0.1:15432 --target 127.0.0.1:5432 \
        --listen 127.0.0.1:16379 --target 127.0.0.1:6379

It delays, it does not throttle. Each chunk read from a socket is stamped with its
arrival time and queued; it is written to the other side at arrival + delay. One FIFO
holds every chunk of every connection and direction (the delay is the same for all, so
release times come out in arrival order), and one timer is armed for the chunk at its
head: nothing sleeps per chunk, so many round trips can be in flight at once and a
pipelined exchange is as fast as without the proxy, only later. Bytes keep their order
per connection; EOF and close travel through the same queue after the data before them.
On Linux the timer is a timerfd (nanosecond resolution): asyncio's own timers wake from
epoll with millisecond resolution, which would round 0.5 ms up to 1 ms or more.

Backpressure only where a real link has it: reading from a socket pauses while the
other side's write buffer is full or more than `--max-queue` bytes of its chunks wait in
the delay line.

Loopback only: listen and target addresses outside 127.0.0.0/8, ::1 and localhost are
refused. On SIGTERM/SIGINT it prints one line of JSON counters and exits.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import ctypes
import ipaddress
import json
import os
import signal
import sys
import time

EOF = b""  # queued after the data: half-close the other side
CLOSE = None  # queued after the data: close the other side

CLOCK_MONOTONIC = 1
TFD_NONBLOCK = os.O_NONBLOCK
TFD_CLOEXEC = os.O_CLOEXEC
TFD_TIMER_ABSTIME = 1
PR_SET_TIMERSLACK = 29


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


class _Itimerspec(ctypes.Structure):
    _fields_ = [("it_interval", _Timespec), ("it_value", _Timespec)]


class WakeAt:
    """Calls `callback` at an absolute time.monotonic_ns(): a timerfd in the event loop
    on Linux (CLOCK_MONOTONIC is time.monotonic's clock), else loop.call_at."""

    def __init__(self, loop: asyncio.AbstractEventLoop, callback) -> None:
        self.loop = loop
        self.callback = callback
        self.handle = None
        self.fd = -1
        self.libc = None
        if sys.platform.startswith("linux"):
            with contextlib.suppress(OSError, AttributeError):
                libc = ctypes.CDLL(None, use_errno=True)
                fd = libc.timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC)
                if fd >= 0:
                    self.libc, self.fd = libc, fd
                    # The kernel may fire a timer up to its slack late (50 µs by default).
                    libc.prctl(PR_SET_TIMERSLACK, 1, 0, 0, 0)
                    loop.add_reader(fd, self._fired)

    def arm(self, when_ns: int) -> None:
        if self.fd >= 0:
            when_ns = max(when_ns, 1)  # 0 would disarm it
            spec = _Itimerspec()
            spec.it_value.tv_sec, spec.it_value.tv_nsec = divmod(when_ns, 1_000_000_000)
            if self.libc.timerfd_settime(self.fd, TFD_TIMER_ABSTIME, ctypes.byref(spec), None):
                raise OSError(ctypes.get_errno(), "timerfd_settime")
            return
        if self.handle is not None:
            self.handle.cancel()
        delay = (when_ns - time.monotonic_ns()) / 1e9
        self.handle = self.loop.call_at(self.loop.time() + max(delay, 0.0), self.callback)

    def _fired(self) -> None:
        with contextlib.suppress(BlockingIOError):
            os.read(self.fd, 8)
        self.callback()

    def close(self) -> None:
        if self.fd >= 0:
            self.loop.remove_reader(self.fd)
            os.close(self.fd)
            self.fd = -1
        if self.handle is not None:
            self.handle.cancel()


class Stats:
    def __init__(self) -> None:
        self.connections = 0
        self.open = 0
        self.failed_upstream = 0
        self.chunks = 0
        self.bytes = {"to_target": 0, "to_client": 0}
        self.max_queued_chunks = 0
        self.late_ns_max = 0  # released later than due, worst case
        self.late_ns_sum = 0  # (early counts negative)
        self.lead_ns = 0
        self.paused = 0

    def as_dict(self) -> dict:
        n = max(self.chunks, 1)
        return {
            "connections": self.connections,
            "open": self.open,
            "failed_upstream": self.failed_upstream,
            "chunks": self.chunks,
            "bytes": self.bytes,
            "max_queued_chunks": self.max_queued_chunks,
            "late_us_mean": round(self.late_ns_sum / n / 1000, 1),
            "late_us_max": round(self.late_ns_max / 1000, 1),
            "timer_lead_us": round(self.lead_ns / 1000, 1),
            "reads_paused": self.paused,
        }


class DelayLine:
    """The one FIFO of (due ns, source side, chunk) and the timer for its head."""

    def __init__(self, delay_ns: int, max_queue: int, stats: Stats) -> None:
        self.delay_ns = delay_ns
        self.max_queue = max_queue
        self.stats = stats
        self.queue: collections.deque = collections.deque()
        self.wake = WakeAt(asyncio.get_running_loop(), self.release)
        self.lead_ns = 0
        self.armed = 0

    def push(self, source: Side, chunk: bytes | None) -> None:
        if self.delay_ns <= 0:
            source.peer.deliver(chunk)
            return
        due = time.monotonic_ns() + self.delay_ns
        queue = self.queue
        queue.append((due, source, chunk))
        if chunk:
            source.queued += len(chunk)
            if source.queued > self.max_queue:
                source.block("queue")
        if len(queue) == 1:
            self.arm(due)
        if len(queue) > self.stats.max_queued_chunks:
            self.stats.max_queued_chunks = len(queue)

    def arm(self, due: int) -> None:
        self.armed = due - self.lead_ns
        self.wake.arm(self.armed)

    def release(self) -> None:
        queue = self.queue
        now = time.monotonic_ns()
        stats = self.stats
        # The wake-up comes late by the scheduler's and the loop's latency: learn it
        # (a moving average) and arm that much early, at most half the delay.
        lead = self.lead_ns + (now - self.armed - self.lead_ns) // 8
        self.lead_ns = lead = min(max(lead, 0), self.delay_ns // 2)
        stats.lead_ns = lead
        batch: dict[Side, list[bytes]] = {}
        horizon = now + lead
        while queue and queue[0][0] <= horizon:
            due, source, chunk = queue.popleft()
            late = now - due
            stats.late_ns_sum += late
            if late > stats.late_ns_max:
                stats.late_ns_max = late
            if chunk:
                batch.setdefault(source, []).append(chunk)
                source.queued -= len(chunk)
                continue
            # EOF or close: first whatever data came before it.
            pending = batch.pop(source, None)
            if pending:
                source.peer.deliver(b"".join(pending))
            source.peer.deliver(chunk)
        for source, chunks in batch.items():
            source.peer.deliver(chunks[0] if len(chunks) == 1 else b"".join(chunks))
            if source.queued <= self.max_queue // 2:
                source.unblock("queue")
        if queue:
            self.arm(queue[0][0])

    def close(self) -> None:
        self.wake.close()


class Side(asyncio.Protocol):
    """One socket of a proxied connection; `peer` is the socket on the other end."""

    def __init__(self, line: DelayLine, direction: str) -> None:
        self.line = line
        self.direction = direction  # where what this side reads goes
        self.peer: Side | None = None
        self.transport: asyncio.Transport | None = None
        self.queued = 0
        self.blocks: set[str] = set()
        self.eof_in = self.eof_out = False

    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.line.stats.chunks += 1
        self.line.stats.bytes[self.direction] += len(data)
        self.line.push(self, data)

    def eof_received(self) -> bool:
        self.eof_in = True
        self.line.push(self, EOF)
        self._close_if_done()
        return True  # keep writing the other direction

    def connection_lost(self, exc) -> None:
        if self.peer is not None:
            self.line.push(self, CLOSE)

    # Flow control: the other side's socket is full -> stop reading this one.
    def pause_writing(self) -> None:
        if self.peer is not None:
            self.peer.block("write")

    def resume_writing(self) -> None:
        if self.peer is not None:
            self.peer.unblock("write")

    def block(self, why: str) -> None:
        if not self.blocks and self.transport is not None and not self.transport.is_closing():
            self.transport.pause_reading()
            self.line.stats.paused += 1
        self.blocks.add(why)

    def unblock(self, why: str) -> None:
        if why in self.blocks:
            self.blocks.discard(why)
            if not self.blocks and self.transport is not None and not self.transport.is_closing():
                self.transport.resume_reading()

    def deliver(self, chunk: bytes | None) -> None:
        """Write what the peer sent `delay` ago; EOF / close as they came."""
        t = self.transport
        if t is None or t.is_closing():
            return
        if chunk:
            t.write(chunk)
        elif chunk is None:
            t.close()
        else:
            self.eof_out = True
            if t.can_write_eof():
                t.write_eof()
            self._close_if_done()

    def _close_if_done(self) -> None:
        if self.eof_in and self.eof_out and self.transport is not None:
            self.transport.close()


class ClientSide(Side):
    def __init__(self, line: DelayLine, target: tuple[str, int]) -> None:
        super().__init__(line, "to_target")
        self.target = target

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        stats = self.line.stats
        stats.connections += 1
        stats.open += 1
        self.block("connecting")
        asyncio.get_running_loop().create_task(self._connect())

    async def _connect(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            _, upstream = await loop.create_connection(
                lambda: Side(self.line, "to_client"), *self.target
            )
        except OSError:
            self.line.stats.failed_upstream += 1
            self.transport.close()
            return
        if self.transport.is_closing():
            upstream.transport.close()
            return
        upstream.peer, self.peer = self, upstream
        self.unblock("connecting")

    def connection_lost(self, exc) -> None:
        self.line.stats.open -= 1
        super().connection_lost(exc)


def parse_addr(text: str, what: str) -> tuple[str, int]:
    """host:port or [v6]:port, loopback only."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"{what} {text!r}: expected host:port")
    host = host.strip("[]")
    if host != "localhost":
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
        if not loopback:
            raise ValueError(
                f"{what} {text!r}: not a loopback address (only 127.0.0.0/8, ::1, localhost)"
            )
    return host, int(port)


class Proxy:
    """Every route of one process, on one delay line."""

    def __init__(self) -> None:
        self.stats = Stats()
        self.servers: list[asyncio.AbstractServer] = []
        self.line: DelayLine | None = None
        self.ports: list[int] = []

    @classmethod
    async def start(
        cls, routes: list[tuple[str, str]], rtt_ms: float, max_queue: int = 16 << 20
    ) -> Proxy:
        """routes: [(listen "host:port", target "host:port")]; port 0 picks a free one
        (see .ports)."""
        self = cls()
        parsed = [(parse_addr(a, "listen"), parse_addr(b, "target")) for a, b in routes]
        self.line = DelayLine(round(rtt_ms * 1e6 / 2), max_queue, self.stats)
        loop = asyncio.get_running_loop()
        for (host, port), target in parsed:

            def factory(target=target):
                return ClientSide(self.line, target)

            server = await loop.create_server(factory, host, port, backlog=1024)
            self.servers.append(server)
            self.ports.append(server.sockets[0].getsockname()[1])
        return self

    async def close(self) -> None:
        for server in self.servers:
            server.close()
        for server in self.servers:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 1)
        if self.line is not None:
            self.line.close()


async def amain(opts) -> int:
    routes = list(zip(opts.listen, opts.target, strict=True))
    proxy = await Proxy.start(routes, opts.rtt, opts.max_queue)
    for (listen, target), port in zip(routes, proxy.ports, strict=True):
        print(
            f"delayproxy: {listen.rpartition(':')[0]}:{port} -> {target}, "
            f"+{opts.rtt:g} ms round trip ({opts.rtt / 2:g} ms each way)",
            flush=True,
        )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await proxy.close()
    print("delayproxy: " + json.dumps(proxy.stats.as_dict()), flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--listen", action="append", required=True, help="host:port (repeatable)")
    ap.add_argument("--target", action="append", required=True, help="host:port (repeatable)")
    ap.add_argument("--rtt", type=float, required=True, help="added round trip, ms")
    ap.add_argument(
        "--max-queue",
        type=int,
        default=16 << 20,
        help="bytes of one socket's data in the delay line before reading it pauses",
    )
    ap.add_argument(
        "--realtime",
        action="store_true",
        help="run under SCHED_FIFO (priority 1) so that a busy machine delays the "
        "release less; needs root or CAP_SYS_NICE, else a warning",
    )
    opts = ap.parse_args(argv)
    if len(opts.listen) != len(opts.target):
        ap.error("give one --target per --listen")
    if not 0 <= opts.rtt <= 10_000:
        ap.error("--rtt must be within 0..10000 ms")
    try:
        for a, b in zip(opts.listen, opts.target, strict=True):
            parse_addr(a, "--listen")
            parse_addr(b, "--target")
    except ValueError as exc:
        ap.error(str(exc))
    if opts.realtime:
        try:
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))
        except OSError as exc:
            print(f"delayproxy: --realtime refused ({exc}); normal priority", flush=True)
    return asyncio.run(amain(opts))


if __name__ == "__main__":
    sys.exit(main())
