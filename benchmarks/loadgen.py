#!/usr/bin/env python3
"""Load generator for rim, speaking the wire contract of PROTOCOL.md.

Setup (not timed) goes through the REST API: register users, log them in, create
groups. Then every user opens one WebSocket, logs in, and the load phase starts:

* load mode: each user sends ``--msgs-per-user`` Msg events to its group with at most
  ``--window`` un-acked messages in flight (closed loop), optionally paced to ``--rate``
  messages per second in total. Ack latency (send -> MsgAck with the same clientMsgId)
  and delivery latency (send time carried in the content -> push arrival at each other
  member's connection) are measured; every push is checked for duplicates (by msgId
  per connection) and for order (seq per group per connection).
* idle mode (``--idle N``): hold N logged-in connections for ``--idle-seconds`` and
  report the server's RSS per idle connection.

Everything is bounded in count and time, the process exits by itself, and only
loopback servers are accepted. Run ``loadgen.py --help`` for the options and
``--scenario a|b|c|d`` for the workloads of issue 6.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import collections
import contextlib
import hashlib
import ipaddress
import os
import random
import resource
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import orjson
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed, WebSocketException
from websockets.speedups import apply_mask

SCENARIOS: dict[str, dict] = {
    "a": {"users": 20, "group_size": 2, "msgs_per_user": 200, "window": 1},
    "b": {"users": 100, "group_size": 10, "msgs_per_user": 100, "window": 8},
    "c": {"users": 200, "group_size": 50, "msgs_per_user": 20, "window": 4},
    "d": {"idle": 10_000, "idle_seconds": 30.0},
}

DEFAULTS: dict = {
    "users": 20,
    "group_size": 2,
    "msgs_per_user": 100,
    "window": 1,
    "idle": 0,
    "idle_seconds": 30.0,
}

CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024
NS_PER_MS = 1_000_000
perf_counter_ns = time.perf_counter_ns


# --------------------------------------------------------------------------- utils


def die(msg: str) -> None:
    print(f"loadgen: {msg}", file=sys.stderr)
    raise SystemExit(2)


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def require_loopback(url: str, what: str) -> None:
    """Refuse anything but 127.0.0.0/8, ::1 and localhost: this tool floods its target."""
    host = urlsplit(url).hostname
    if host is None:
        die(f"{what} {url!r} has no host")
    if host == "localhost":
        return
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        die(f"{what} host {host!r} is not a loopback address (only 127.0.0.0/8, ::1, localhost)")
    if not addr.is_loopback:
        die(f"{what} host {host!r} is not a loopback address (only 127.0.0.0/8, ::1, localhost)")


def raise_nofile(needed: int) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else max(soft, needed)
    if want > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def pct(sorted_vals: list, p: float) -> float | None:
    """Nearest-rank percentile of an ascending list (None when empty)."""
    if not sorted_vals:
        return None
    k = max(0, min(len(sorted_vals) - 1, round(p / 100.0 * len(sorted_vals) + 0.5) - 1))
    return sorted_vals[k]


def latency_summary(ns_values: list) -> dict:
    vals = sorted(ns_values)
    out = {"count": len(vals)}
    for name, p in (("p50", 50), ("p95", 95), ("p99", 99)):
        v = pct(vals, p)
        out[name] = None if v is None else round(v / NS_PER_MS, 3)
    out["max"] = round(vals[-1] / NS_PER_MS, 3) if vals else None
    out["mean"] = round(sum(vals) / len(vals) / NS_PER_MS, 3) if vals else None
    return out


def fmt_ms(v: float | None) -> str:
    return "-" if v is None else f"{v:.1f}"


class ProcStats:
    """CPU seconds and memory of one server process, read from /proc."""

    def __init__(self, pid: int | None) -> None:
        self.pid = pid
        if pid is not None and not os.path.exists(f"/proc/{pid}/stat"):
            die(f"--server-pid {pid}: no such process")

    def sample(self) -> dict | None:
        if self.pid is None:
            return None
        try:
            with open(f"/proc/{self.pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{self.pid}/status") as f:
                status = {}
                for line in f:
                    key, _, val = line.partition(":")
                    status[key] = val.strip()
        except OSError:
            return None
        # fields[0] is field 3 (state); utime/stime are fields 14/15.
        cpu = (int(fields[11]) + int(fields[12])) / CLK_TCK

        def kb(key: str) -> int | None:
            v = status.get(key)
            return int(v.split()[0]) if v else None

        return {
            "t": time.monotonic(),
            "cpu_s": cpu,
            "rss_kb": kb("VmRSS"),
            "hwm_kb": kb("VmHWM"),
            "threads": int(status.get("Threads", "0")),
        }


class MachineStats:
    """Per-core busy time from /proc/stat: shows whether other processes competed for
    the cores during a measurement (taskset pins, it does not reserve)."""

    @staticmethod
    def sample() -> dict:
        cores = {}
        with open("/proc/stat") as f:
            for line in f:
                if line.startswith("cpu") and line[3].isdigit():
                    name, *vals = line.split()
                    v = [int(x) for x in vals]
                    idle = v[3] + v[4]  # idle + iowait
                    cores[name] = (sum(v[:8]) - idle, sum(v[:8]))
        return {"t": time.monotonic(), "cores": cores, "loadavg": os.getloadavg()}

    @staticmethod
    def delta(a: dict, b: dict, server_cpu_s: float | None, loadgen_cpu_s: float) -> dict:
        busy = {}
        busy_s = 0.0
        for name, (b_busy, b_total) in b["cores"].items():
            a_busy, a_total = a["cores"].get(name, (b_busy, b_total))
            total = b_total - a_total
            busy[name] = round(100.0 * (b_busy - a_busy) / total, 1) if total else None
            busy_s += (b_busy - a_busy) / CLK_TCK
        # Without --server-pid the server's own CPU cannot be told from others'.
        others = None if server_cpu_s is None else busy_s - server_cpu_s - loadgen_cpu_s
        wall = b["t"] - a["t"]
        return {
            "core_busy_pct": busy,
            "other_processes_cpu_s": None if others is None else round(others, 2),
            "other_processes_pct_of_one_core": (
                round(100.0 * others / wall, 1) if others is not None and wall else None
            ),
            "loadavg_start": [round(x, 2) for x in a["loadavg"]],
            "loadavg_end": [round(x, 2) for x in b["loadavg"]],
        }


async def settle(proc: ProcStats, limit: float) -> dict:
    """Wait (at most `limit` s) until the server is quiet: under 10% of a core over
    0.5 s. A previous run's backlog must not be measured as this run's load."""
    t0 = time.monotonic()
    prev = proc.sample()
    if prev is None or limit <= 0:
        return {"settle_s": 0.0, "settled": None}
    while time.monotonic() - t0 < limit:
        await asyncio.sleep(0.5)
        cur = proc.sample()
        if cur is None:
            break
        busy = (cur["cpu_s"] - prev["cpu_s"]) / (cur["t"] - prev["t"])
        prev = cur
        if busy < 0.10:
            return {"settle_s": round(time.monotonic() - t0, 1), "settled": True}
    log(f"WARNING: the server stayed busy for the whole --settle {limit} s")
    return {"settle_s": round(time.monotonic() - t0, 1), "settled": False}


def own_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def server_delta(before: dict | None, after: dict | None, wall: float) -> dict | None:
    if not before or not after:
        return None
    cpu = after["cpu_s"] - before["cpu_s"]
    return {
        "cpu_s": round(cpu, 3),
        "cpu_pct_of_one_core": round(100.0 * cpu / wall, 1) if wall > 0 else None,
        "rss_before_kb": before["rss_kb"],
        "rss_after_kb": after["rss_kb"],
        "rss_peak_kb": after["hwm_kb"],
        "threads": after["threads"],
    }


# ---------------------------------------------------------------------------- REST


class RestError(Exception):
    pass


class Rest:
    """A minimal blocking JSON client run in a thread pool; setup is not timed."""

    def __init__(self, base: str, concurrency: int, timeout: float) -> None:
        self.base = base.rstrip("/")
        self.timeout = timeout
        # No ProxyHandler entries: never route loopback traffic through an env proxy.
        self.opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        self.pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="rest")

    def _call(self, path: str, body: dict, token: str | None):
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        req = urllib.request.Request(
            self.base + path, data=orjson.dumps(body), headers=headers, method="POST"
        )
        for attempt in range(4):
            try:
                with self.opener.open(req, timeout=self.timeout) as resp:
                    status, raw = resp.status, resp.read()
                break
            except urllib.error.HTTPError as e:
                status, raw = e.code, e.read()
                break
            except (urllib.error.URLError, OSError) as e:
                # Refused or reset before an answer (listen backlog full): try again.
                if attempt == 3:
                    raise RestError(f"POST {path}: {e}") from None
                time.sleep(0.2 * 2**attempt)
        try:
            env = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise RestError(f"POST {path}: HTTP {status}, not JSON: {raw[:200]!r}") from None
        if not isinstance(env, dict) or not env.get("ok"):
            msg = env.get("msg") if isinstance(env, dict) else env
            raise RestError(f"POST {path}: HTTP {status}: {msg}")
        return env.get("data")

    async def post(self, path: str, body: dict, token: str | None = None):
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.pool, self._call, path, body, token)

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)


async def register_users(rest: Rest, prefix: str, n: int, concurrency: int) -> list[tuple]:
    """Create and log in n users concurrently; returns [(uid, token)] in index order."""
    sem = asyncio.Semaphore(concurrency)
    done = 0
    t0 = time.monotonic()

    async def one(i: int) -> tuple[int, str]:
        nonlocal done
        account = f"{prefix}u{i}"
        password = f"pw-{prefix}-{i}"
        async with sem:
            uid = await rest.post(
                "/api/user/create",
                {
                    "name": f"lg user {i}",
                    "avatar": "",
                    "email": f"{account}@loadgen.invalid",
                    "account": account,
                    "password": password,
                },
            )
            token = await rest.post("/api/user/login", {"account": account, "password": password})
        if not isinstance(uid, int) or not isinstance(token, str):
            raise RestError(f"unexpected create/login data: {uid!r} / {token!r}")
        done += 1
        if done % 100 == 0:
            log(f"setup: {done}/{n} users ({time.monotonic() - t0:.1f} s)")
        return uid, token

    return list(await asyncio.gather(*(one(i) for i in range(n))))


def partition(n: int, size: int) -> list[list[int]]:
    """Split user indexes into groups of `size`; a lone remainder joins the last group."""
    groups = [list(range(i, min(i + size, n))) for i in range(0, n, size)]
    if len(groups) > 1 and len(groups[-1]) < 2:
        groups[-2].extend(groups.pop())
    return groups


async def create_groups(
    rest: Rest,
    prefix: str,
    users: list[tuple],
    parts: list[list[int]],
    concurrency: int,
    extra_members=None,
) -> list[int]:
    """One group per part; `extra_members(k)` -> more uids for group k (members that
    this run does not account for, such as benchmarks/hostile.py's clients)."""
    sem = asyncio.Semaphore(concurrency)

    async def one(k: int, members: list[int]) -> int:
        creator_uid, creator_token = users[members[0]]
        uids = [users[m][0] for m in members[1:]] + (extra_members(k) if extra_members else [])
        body = {
            "group": {"name": f"{prefix}g{k}", "avatar": "", "mode": 2, "creatorUid": creator_uid},
            "users": [{"uid": uid, "role": 1} for uid in uids],
        }
        async with sem:
            gid = await rest.post("/api/group/create", body, creator_token)
        if not isinstance(gid, int):
            raise RestError(f"unexpected group/create data: {gid!r}")
        return gid

    return list(await asyncio.gather(*(one(k, m) for k, m in enumerate(parts))))


# ---------------------------------------------------------------------- WebSocket

WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
MAX_FRAME = 1 << 22  # bounded: a larger frame from the server is a protocol error here


def frame(event: str, uid: int, gid, content: str, cmid: str, msg_id=None) -> bytes:
    return orjson.dumps(
        {
            "event": event,
            "body": {
                "kind": "Text",
                "uid": uid,
                "gid": gid,
                "content": content,
                "clientMsgId": cmid,
                "msgId": msg_id,
            },
        }
    )


def client_frame(payload: bytes, opcode: int = 1) -> bytes:
    """One final, masked client frame (RFC 6455 §5.2): text by default."""
    n = len(payload)
    if n < 126:
        head = bytes((0x80 | opcode, 0x80 | n))
    elif n < 65536:
        head = bytes((0x80 | opcode, 0xFE)) + n.to_bytes(2, "big")
    else:
        head = bytes((0x80 | opcode, 0xFF)) + n.to_bytes(8, "big")
    mask = random.randbytes(4)
    return head + mask + apply_mask(payload, mask)


def handshake_request(url: str, origin: str | None, key: bytes) -> bytes:
    """The HTTP/1.1 upgrade request for `url` (ws:// only)."""
    parts = urlsplit(url)
    if parts.scheme != "ws":
        raise ValueError("--client raw supports ws:// only")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    req = [
        f"GET {path} HTTP/1.1".encode(),
        b"Host: " + parts.netloc.encode(),
        b"Upgrade: websocket",
        b"Connection: Upgrade",
        b"Sec-WebSocket-Key: " + key,
        b"Sec-WebSocket-Version: 13",
    ]
    if origin:
        req.append(b"Origin: " + origin.encode())
    return b"\r\n".join(req) + b"\r\n\r\n"


def handshake_accepted(head: bytes, key: bytes) -> bool:
    """Whether the response head (up to the blank line) accepts the upgrade of `key`."""
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    accept = base64.b64encode(hashlib.sha1(key + WS_GUID).digest()).decode()
    return lines[0].startswith("HTTP/1.1 101") and headers.get("sec-websocket-accept") == accept


class ConnClosed(Exception):
    pass


_SCRATCH = memoryview(bytearray(1 << 18))  # one receive buffer shared by every RawConn


class RawConn(asyncio.BufferedProtocol):
    """A lean RFC 6455 client (text frames, no extensions) on a bare asyncio transport.

    Frames are parsed in a tight loop inside ``data_received`` and handed to a
    synchronous handler, so a push costs a few microseconds and no task switch. This is
    what keeps the load generator well below the server's cost per delivery; the
    ``websockets`` client (``--client websockets``) does the same job at roughly three
    times the CPU per frame and is there to cross-check results.
    """

    __slots__ = ("buf", "frag", "handler", "inbox", "key", "lost", "opened", "transport", "waiter")

    def __init__(self) -> None:
        loop = asyncio.get_running_loop()
        self.transport = None
        self.buf = bytearray()
        self.opened = loop.create_future()  # resolves with None after the 101 response
        self.lost = loop.create_future()  # resolves with a reason string
        self.handler = None
        self.inbox: list[bytes] = []
        self.waiter = None
        self.frag = None
        self.key = b""

    @classmethod
    async def open(cls, url: str, origin: str | None, timeout: float) -> RawConn:
        parts = urlsplit(url)
        key = base64.b64encode(os.urandom(16))
        request = handshake_request(url, origin, key)
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(timeout):
            _, conn = await loop.create_connection(cls, parts.hostname, parts.port or 80)
            conn.transport.write(request)
            conn.key = key
            try:
                await conn.opened
            except BaseException:
                conn.transport.abort()
                raise
        return conn

    def connection_made(self, transport) -> None:
        self.transport = transport

    def connection_lost(self, exc) -> None:
        if not self.opened.done():
            self.opened.set_exception(ConnClosed(f"closed during handshake: {exc}"))
        if not self.lost.done():
            self.lost.set_result("abnormal" if exc else "eof")
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnClosed("closed"))
        if self.handler is not None:
            self.handler(None)

    def _handshake(self) -> bool:
        buf = self.buf
        i = buf.find(b"\r\n\r\n")
        if i < 0:
            if len(buf) > 16384:
                self.opened.set_exception(ConnClosed("oversized handshake response"))
                self.transport.abort()
            return False
        head = bytes(buf[:i])
        del buf[: i + 4]
        if not handshake_accepted(head, self.key):
            status = head.split(b"\r\n", 1)[0].decode("latin-1")
            self.opened.set_exception(ConnClosed(f"handshake refused: {status}"))
            self.transport.abort()
            return False
        self.opened.set_result(None)
        return True

    def get_buffer(self, sizehint: int) -> memoryview:
        # recv_into one shared buffer: no 256 KiB allocation per read (asyncio's
        # Protocol path) and no per-connection buffer; buffer_updated copies it out.
        return _SCRATCH

    def buffer_updated(self, nbytes: int) -> None:
        buf = self.buf
        buf += _SCRATCH[:nbytes]
        if not self.opened.done() and not self._handshake():
            return
        n = len(buf)
        pos = 0
        while n - pos >= 2:
            b0 = buf[pos]
            ln = buf[pos + 1]
            hdr = 2
            if ln & 0x80:
                self._fail("masked server frame")
                return
            if ln == 126:
                if n - pos < 4:
                    break
                ln = (buf[pos + 2] << 8) | buf[pos + 3]
                hdr = 4
            elif ln == 127:
                if n - pos < 10:
                    break
                ln = int.from_bytes(buf[pos + 2 : pos + 10], "big")
                hdr = 10
            if ln > MAX_FRAME:
                self._fail("oversized frame")
                return
            end = pos + hdr + ln
            if end > n:
                break
            payload = bytes(buf[pos + hdr : end])
            pos = end
            op = b0 & 0x0F
            if op == 1 or op == 2:
                if b0 & 0x80:
                    self._deliver(payload)
                else:
                    self.frag = [payload]
            elif op == 0 and self.frag is not None:
                self.frag.append(payload)
                if b0 & 0x80:
                    whole, self.frag = b"".join(self.frag), None
                    self._deliver(whole)
            elif op == 8:
                code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else 1005
                if not self.lost.done():
                    self.lost.set_result(str(code))
                self._write(payload[:2], 8)
                self.transport.close()
                break
            elif op == 9:
                self._write(payload, 10)
        del buf[:pos]

    def _fail(self, why: str) -> None:
        if not self.lost.done():
            self.lost.set_result(f"protocol error: {why}")
        self.transport.abort()

    def _deliver(self, payload: bytes) -> None:
        handler = self.handler
        if handler is not None:
            out = handler(payload)
            if out is not None:
                self._write(out, 1)
            return
        self.inbox.append(payload)
        w = self.waiter
        if w is not None and not w.done():
            w.set_result(None)

    def _write(self, payload: bytes, opcode: int) -> None:
        self.transport.write(client_frame(payload, opcode))

    # The interface shared with WsConn -------------------------------------------

    async def send(self, payload: bytes) -> None:
        if self.lost.done():
            raise ConnClosed(self.lost.result())
        self._write(payload, 1)

    async def recv(self) -> bytes:
        while not self.inbox:
            if self.lost.done():
                raise ConnClosed(self.lost.result())
            self.waiter = asyncio.get_running_loop().create_future()
            await self.waiter
        return self.inbox.pop(0)

    def set_handler(self, handler) -> None:
        """handler(payload) -> frame to send or None; handler(None) once on close."""
        self.handler = handler
        while self.inbox and self.handler is handler:
            out = handler(self.inbox.pop(0))
            if out is not None:
                self._write(out, 1)

    @property
    def is_open(self) -> bool:
        return not self.lost.done()

    def close_reason(self) -> str:
        return self.lost.result() if self.lost.done() else "open"

    async def close(self) -> None:
        if not self.lost.done():
            self._write(b"\x03\xe8", 8)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self.lost), 2)
        self.transport.abort()

    def abort(self) -> None:
        self.transport.abort()


class WsConn:
    """The same interface over the `websockets` asyncio client."""

    __slots__ = ("task", "ws")

    def __init__(self, ws) -> None:
        self.ws = ws
        self.task = None

    @classmethod
    async def open(cls, args, timeout: float) -> WsConn:
        ws = await ws_connect(
            args.ws_url,
            origin=args.origin,
            compression=None,
            proxy=None,
            ping_interval=None,
            close_timeout=2,
            open_timeout=timeout,
            max_size=MAX_FRAME,
            max_queue=None,
            user_agent_header=None,
        )
        return cls(ws)

    async def send(self, payload: bytes) -> None:
        try:
            await self.ws.send(payload, text=True)
        except ConnectionClosed as e:
            raise ConnClosed(str(e)) from None

    async def recv(self) -> bytes:
        try:
            return await self.ws.recv(decode=False)
        except ConnectionClosed as e:
            raise ConnClosed(str(e)) from None

    def set_handler(self, handler) -> None:
        self.task = asyncio.create_task(self._pump(handler))

    async def _pump(self, handler) -> None:
        ws = self.ws
        try:
            while True:
                out = handler(await ws.recv(decode=False))
                if out is not None:
                    await ws.send(out, text=True)
        except ConnectionClosed:
            pass
        finally:
            handler(None)

    @property
    def is_open(self) -> bool:
        return self.ws.close_code is None

    def close_reason(self) -> str:
        code = self.ws.close_code
        return "open" if code is None else str(code)

    async def close(self) -> None:
        if self.task is not None:
            self.task.cancel()
        try:
            await asyncio.wait_for(self.ws.close(), 3)
        except (OSError, TimeoutError, WebSocketException):
            self.ws.transport.abort()

    def abort(self) -> None:
        self.ws.transport.abort()


class LoginError(Exception):
    pass


# What opening, logging in or closing one connection may raise; counted, not fatal.
SETUP_ERRORS = (
    OSError,
    TimeoutError,
    ValueError,
    ConnClosed,
    LoginError,
    WebSocketException,
)


async def open_and_login(args, uid: int, token: str, timeout: float):
    """Open one WebSocket, send Login, wait for its Ok ack. Returns (conn, latency ns)."""
    if args.client == "raw":
        conn = await RawConn.open(args.ws_url, args.origin, timeout)
    else:
        conn = await WsConn.open(args, timeout)
    t0 = time.perf_counter_ns()
    try:
        await conn.send(frame("Login", uid, None, token, "login"))
        async with asyncio.timeout(timeout):
            while True:
                d = orjson.loads(await conn.recv())
                if d.get("event") is None and d.get("clientMsgId") == "login":
                    break
        if d.get("content") != "Ok":
            raise LoginError(str(d.get("content")))
    except BaseException:
        conn.abort()
        raise
    return conn, time.perf_counter_ns() - t0


async def open_many(args, creds: list[tuple], n: int, timeout: float, on_open=None) -> tuple:
    """Open and log in n connections (connection i uses creds[i % len]) with bounded
    concurrency; on_open(conn, uid) runs right after each login. Returns (conns with None
    for failures, login latencies, failures)."""
    sem = asyncio.Semaphore(args.connect_concurrency)
    conns: list = [None] * n
    lat: list[int] = []
    failures: dict[str, int] = {}
    t0 = time.monotonic()
    every = 1000 if n >= 2000 else 0

    async def one(i: int) -> None:
        uid, token = creds[i % len(creds)]
        async with sem:
            try:
                conn, ns = await open_and_login(args, uid, token, timeout)
            except SETUP_ERRORS as e:
                key = type(e).__name__
                if isinstance(e, (LoginError, OSError, ConnClosed)):
                    key += f": {e}"
                failures[key] = failures.get(key, 0) + 1
                return
        conns[i] = conn
        lat.append(ns)
        if on_open is not None:
            on_open(conn, uid)
        if every and len(lat) % every == 0:
            log(f"connect: {len(lat)}/{n} logged in ({time.monotonic() - t0:.1f} s)")

    try:
        async with asyncio.timeout(timeout):
            await asyncio.gather(*(one(i) for i in range(n)))
    except TimeoutError:
        failures["phase timeout"] = sum(1 for c in conns if c is None)
        log(f"WARNING: opening connections hit --timeout {timeout} s")
    return conns, lat, failures


async def close_all(conns: list, concurrency: int = 500) -> None:
    sem = asyncio.Semaphore(concurrency)

    async def one(conn) -> None:
        async with sem:
            try:
                await conn.close()
            except SETUP_ERRORS:
                conn.abort()

    await asyncio.gather(*(one(c) for c in conns if c is not None))


# ---------------------------------------------------------------------- load mode


class Stats:
    """Run-wide counters; plain attributes because the receive path is hot."""

    def __init__(self, marker: str, acks_every: int, reads_every: int) -> None:
        self.marker = marker
        self.acks_every = acks_every
        self.reads_every = reads_every
        self.sent = 0
        self.acked = 0
        self.first_send = None
        self.last_ack = None
        self.last_delivery = None
        self.ack_lat: list[int] = []
        self.dlv_lat: list[int] = []
        self.msg_errors: dict[str, int] = {}
        self.ctl_errors: dict[str, int] = {}
        self.ctl_sent = 0
        self.ctl_acked = 0
        self.acked_ids: dict[int, int] = {}  # serverMsgId -> gid
        self.recv_by_mid: dict[int, int] = {}  # msgId -> deliveries of run messages
        self.received = 0  # unique deliveries of this run's messages
        self.duplicates = 0
        self.out_of_order = 0
        self.foreign = 0  # unique Msg pushes not sent by this run
        self.read_pushes = 0
        self.other_frames = 0
        self.unmatched_acks = 0
        self.heart_acks = 0
        self.close_reasons: dict[str, int] = {}


class Client:
    """One user with one connection in load mode; `on_frame` is the hot path."""

    __slots__ = (
        "closed",
        "conn",
        "gid",
        "idx",
        "last_seq",
        "latest_mid",
        "pending",
        "pushes",
        "seen",
        "slots",
        "st",
        "uid",
    )

    def __init__(self, idx: int, uid: int, gid: int, conn, window: int, st: Stats) -> None:
        self.idx = idx
        self.uid = uid
        self.gid = gid
        self.conn = conn
        self.st = st
        self.pending: dict[str, int] = {}
        self.slots = asyncio.Semaphore(window)
        self.seen: set[int] = set()
        self.last_seq: dict[int, int] = {}
        self.pushes = 0
        self.latest_mid: dict[int, int] = {}
        self.closed = False

    def on_frame(self, raw: bytes | None) -> bytes | None:
        """Account one server frame; returns an Ack/Read frame to send, if one is due."""
        now = perf_counter_ns()
        st = self.st
        if raw is None:
            self._on_close()
            return None
        d = orjson.loads(raw)
        ev = d.get("event")
        if ev == "Msg":
            b = d["body"]
            mid = b["msgId"]
            seen = self.seen
            if mid in seen:
                st.duplicates += 1
                return None
            seen.add(mid)
            gid = b["gid"]
            seq = b.get("seq")
            if seq is not None:
                last_seq = self.last_seq
                if seq <= last_seq.get(gid, 0):
                    st.out_of_order += 1
                else:
                    last_seq[gid] = seq
            content = b["content"]
            marker = st.marker
            if content.startswith(marker):
                st.received += 1
                rbm = st.recv_by_mid
                rbm[mid] = rbm.get(mid, 0) + 1
                m = len(marker)
                st.dlv_lat.append(now - int(content[m : content.index(" ", m)]))
                st.last_delivery = now
            else:
                st.foreign += 1
            if st.acks_every or st.reads_every:
                return self._control_due(gid, mid)
            return None
        if ev is None:
            cmid = d.get("clientMsgId")
            t0 = self.pending.pop(cmid, None)
            if t0 is None:
                if cmid == "h":
                    st.heart_acks += 1
                else:
                    st.unmatched_acks += 1
                return None
            ok = d.get("content") == "Ok"
            if cmid[0] == "m":
                if ok:
                    st.acked += 1
                    st.ack_lat.append(now - t0)
                    st.last_ack = now
                    st.acked_ids[d["serverMsgId"]] = self.gid
                else:
                    code = str(d.get("content"))
                    st.msg_errors[code] = st.msg_errors.get(code, 0) + 1
                self.slots.release()
            else:
                st.ctl_acked += 1
                if not ok:
                    code = str(d.get("content"))
                    st.ctl_errors[code] = st.ctl_errors.get(code, 0) + 1
            return None
        if ev == "Read":
            st.read_pushes += 1
        else:
            st.other_frames += 1
        return None

    def _control_due(self, gid: int, mid: int) -> bytes | None:
        st = self.st
        self.pushes += 1
        latest = self.latest_mid
        if mid > latest.get(gid, 0):
            latest[gid] = mid
        if st.reads_every and self.pushes % st.reads_every == 0:
            event = "Read"
        elif st.acks_every and self.pushes % st.acks_every == 0:
            event = "Ack"
        else:
            return None
        cmid = f"{event[0].lower()}{st.ctl_sent}"
        st.ctl_sent += 1
        self.pending[cmid] = perf_counter_ns()
        return frame(event, self.uid, gid, "", cmid, latest[gid])

    def _on_close(self) -> None:
        if self.closed:
            return
        self.closed = True
        reason = self.conn.close_reason()
        st = self.st
        st.close_reasons[reason] = st.close_reasons.get(reason, 0) + 1
        # Unblock the sender: whatever is still pending will never be acked.
        for cmid in self.pending:
            if cmid[0] == "m":
                self.slots.release()

    async def send_all(self, n_msgs: int, window: int, pace) -> None:
        """Closed loop: at most `window` un-acked Msg events; optional absolute pacing."""
        st = self.st
        conn = self.conn
        uid, gid = self.uid, self.gid
        pending = self.pending
        slots = self.slots
        marker = st.marker
        for n in range(n_msgs):
            if pace is not None:
                start, interval = pace
                delay = start + n * interval - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            await slots.acquire()
            if self.closed:
                return
            cmid = f"m{n}"
            t = perf_counter_ns()
            if st.first_send is None:
                st.first_send = t
            pending[cmid] = t
            try:
                await conn.send(frame("Msg", uid, gid, f"{marker}{t} u{uid} n{n}", cmid))
            except ConnClosed:
                pending.pop(cmid, None)
                return
            st.sent += 1
        # Wait until every message of this user is answered (acks return the slots).
        for _ in range(window):
            await slots.acquire()
            if self.closed:
                return


async def run_load(args, rest: Rest, proc: ProcStats, hooks=None) -> dict:
    """The load phase. `hooks` (benchmarks/hostile.py) may add members to the groups
    (`hooks.extra_members(k)`), learns the gids (`hooks.groups_created(gids)`) and is
    told when the load starts (`hooks.load_started()`)."""
    rng = random.Random(args.seed)
    prefix = args.prefix
    result: dict = {"mode": "load"}

    t_setup = time.monotonic()
    log(f"setup: registering {args.users} users (concurrency {args.setup_concurrency})")
    users = await register_users(rest, prefix, args.users, args.setup_concurrency)
    t_users = time.monotonic() - t_setup
    parts = partition(args.users, args.group_size)
    gids = await create_groups(
        rest, prefix, users, parts, args.setup_concurrency, hooks and hooks.extra_members
    )
    if hooks is not None:
        hooks.groups_created(gids)
    gid_of = {}
    size_of_gid = {}
    for members, gid in zip(parts, gids, strict=True):
        size_of_gid[gid] = len(members)
        for m in members:
            gid_of[m] = gid
    t_groups = time.monotonic() - t_setup - t_users
    log(f"setup: {len(users)} users in {t_users:.1f} s, {len(gids)} groups in {t_groups:.1f} s")

    t_conn = time.monotonic()
    conns, login_lat, failures = await open_many(args, users, len(users), args.timeout)
    t_conn = time.monotonic() - t_conn
    st = Stats(f"{prefix} ", args.acks, args.reads)
    live = [
        Client(i, users[i][0], gid_of[i], conn, args.window, st)
        for i, conn in enumerate(conns)
        if conn is not None
    ]
    log(f"setup: {len(live)}/{len(conns)} WebSocket logins in {t_conn:.1f} s")
    result["setup"] = {
        "users_s": round(t_users, 2),
        "groups_s": round(t_groups, 2),
        "ws_logins_s": round(t_conn, 2),
        "ws_login_failures": failures,
        "ws_login_latency_ms": latency_summary(login_lat),
    }
    if failures:
        log(f"WARNING: WebSocket login failures: {failures}")
    for c in live:
        c.conn.set_handler(c.on_frame)
    result["setup"].update(await settle(proc, args.settle))
    if hooks is not None:
        hooks.load_started()
    log("load: start")

    pace_interval = len(live) / args.rate if args.rate else None  # s between one user's msgs
    cpu0, srv0, wall0 = own_cpu(), proc.sample(), time.monotonic()
    mach0 = MachineStats.sample()
    start = time.monotonic() + 0.05
    senders = []
    for c in live:
        pace = None
        if pace_interval is not None:
            pace = (start + rng.uniform(0, pace_interval), pace_interval)
        senders.append(asyncio.create_task(c.send_all(args.msgs_per_user, args.window, pace)))
    progress = asyncio.create_task(report_progress(st, wall0))
    # A connection that only receives is "silent" to the server: Heart keeps long runs
    # and long drains from being closed by its idle timeout.
    hb = Heartbeat(args.heart) if args.heart else None
    if hb is not None:
        for c in live:
            hb.add(c.conn, c.uid)
        hb_task = asyncio.create_task(hb.run())
    timed_out = False
    try:
        async with asyncio.timeout(args.timeout):
            await asyncio.gather(*senders)
    except TimeoutError:
        timed_out = True
        log(f"WARNING: load phase hit --timeout {args.timeout} s")
        for t in senders:
            t.cancel()
    t_acks = time.monotonic()

    # Deliveries still in flight after the last ack: wait for them, bounded.
    expected = sum(size_of_gid[g] - 1 for g in st.acked_ids.values())
    drain_deadline = time.monotonic() + args.drain
    while (
        (st.received < expected or st.ctl_acked < st.ctl_sent)
        and time.monotonic() < drain_deadline
        and not all(c.closed for c in live)
    ):
        await asyncio.sleep(0.01)
    drained = time.monotonic() - t_acks
    wall = time.monotonic() - wall0
    cpu1, srv1 = own_cpu(), proc.sample()
    mach1 = MachineStats.sample()
    progress.cancel()
    if hb is not None:
        hb_task.cancel()
    closed_during_run = dict(st.close_reasons)
    await close_all([c.conn for c in live])

    lost = extra = 0
    for mid, gid in st.acked_ids.items():
        got = st.recv_by_mid.get(mid, 0)
        want = size_of_gid[gid] - 1
        if got < want:
            lost += want - got
        elif got > want:
            extra += got - want
    unacked_delivered = sum(v for k, v in st.recv_by_mid.items() if k not in st.acked_ids)

    first = st.first_send
    ack_span = (st.last_ack - first) / 1e9 if first and st.last_ack else None
    dlv_span = (st.last_delivery - first) / 1e9 if first and st.last_delivery else None
    n_err = sum(st.msg_errors.values())
    result.update(
        {
            "messages": {
                "planned": args.users * args.msgs_per_user,
                "sent": st.sent,
                "acked_ok": st.acked,
                "errors": dict(st.msg_errors),
                "unacked": st.sent - st.acked - n_err,
                "timed_out": timed_out,
            },
            "acked_msgs_per_s": round(st.acked / ack_span, 1) if ack_span else None,
            "ack_span_s": round(ack_span, 3) if ack_span else None,
            "ack_latency_ms": latency_summary(st.ack_lat),
            "deliveries": {
                "expected": expected,
                "received": st.received,
                "lost": lost,
                "duplicated": st.duplicates,
                "out_of_order": st.out_of_order,
                "extra_beyond_expected": extra,
                "of_unacked_messages": unacked_delivered,
                "foreign_pushes": st.foreign,
                "read_pushes": st.read_pushes,
                "other_frames": st.other_frames,
                "drain_wait_s": round(drained, 3),
                "drain_timed_out": st.received < expected,
            },
            "deliveries_per_s": round(st.received / dlv_span, 1) if dlv_span else None,
            "delivery_latency_ms": latency_summary(st.dlv_lat),
            "control": {
                "acks_every": args.acks,
                "reads_every": args.reads,
                "sent": st.ctl_sent,
                "acked": st.ctl_acked,
                "errors": dict(st.ctl_errors),
            },
            "unmatched_acks": st.unmatched_acks,
            "heart": {
                "interval_s": args.heart,
                "sent": hb.sent if hb else 0,
                "acked": st.heart_acks,
            },
            "connections_closed_during_run": sum(closed_during_run.values()),
            "close_reasons": closed_during_run,
            "wall_s": round(wall, 3),
            "server": server_delta(srv0, srv1, wall),
            "loadgen": {
                "client": args.client,
                "cpu_s": round(cpu1 - cpu0, 3),
                "cpu_pct_of_one_core": round(100.0 * (cpu1 - cpu0) / wall, 1),
            },
            "machine": MachineStats.delta(
                mach0, mach1, srv1["cpu_s"] - srv0["cpu_s"] if srv0 and srv1 else None, cpu1 - cpu0
            ),
        }
    )
    return result


async def report_progress(st: Stats, t0: float) -> None:
    while True:
        await asyncio.sleep(5)
        log(
            f"load: {time.monotonic() - t0:.0f} s, sent {st.sent}, acked {st.acked}, "
            f"deliveries {st.received}, errors {sum(st.msg_errors.values())}"
        )


# ---------------------------------------------------------------------- idle mode


class IdleCounter:
    """Shared frame handler for idle connections: counts, keeps nothing per connection."""

    def __init__(self) -> None:
        self.acks_ok = 0
        self.errors: dict[str, int] = {}
        self.pushes = 0
        self.closed = 0

    def __call__(self, raw: bytes | None) -> None:
        if raw is None:
            self.closed += 1
            return
        d = orjson.loads(raw)
        if d.get("event") is not None:
            self.pushes += 1
        elif d.get("content") == "Ok":
            self.acks_ok += 1
        else:
            code = str(d.get("content"))
            self.errors[code] = self.errors.get(code, 0) + 1


class Heartbeat:
    """Heart on every idle connection every `interval` s, counted from its login.

    One task and one deque for all connections: entries are appended in due order and
    re-queued `interval` later, so the deque stays sorted. It starts with the first
    login: opening thousands of connections can take longer than the server's idle
    timeout, and the first ones must not be closed for silence meanwhile.
    """

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.queue: collections.deque = collections.deque()
        self.wake = asyncio.Event()
        self.sent = 0
        self.frames: dict[int, bytes] = {}  # uid -> its Heart frame, shared by its devices

    def add(self, conn, uid: int) -> None:
        heart = self.frames.get(uid)
        if heart is None:
            heart = self.frames[uid] = frame("Heart", uid, None, "", "h")
        self.queue.append((time.monotonic() + self.interval, conn, heart))
        self.wake.set()

    async def run(self) -> None:
        queue = self.queue
        while True:
            if not queue:
                self.wake.clear()
                await self.wake.wait()
                continue
            due, conn, heart = queue[0]
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(min(delay, 1.0))
                continue
            queue.popleft()
            if conn.is_open:
                try:
                    await conn.send(heart)
                    self.sent += 1
                except ConnClosed:
                    continue
                queue.append((due + self.interval, conn, heart))


async def run_idle(args, rest: Rest, proc: ProcStats) -> dict:
    n = args.idle
    n_users = min(n, args.idle_users)
    result: dict = {"mode": "idle", "connections_requested": n, "users": n_users}

    t0 = time.monotonic()
    log(f"setup: registering {n_users} users for {n} connections")
    users = await register_users(rest, args.prefix, n_users, args.setup_concurrency)
    # Each user is in one two-member group, so each Login joins a conversation.
    if n_users >= 2:
        await create_groups(rest, args.prefix, users, partition(n_users, 2), args.setup_concurrency)
    result["setup_s"] = round(time.monotonic() - t0, 2)
    await asyncio.sleep(1.0)
    result["settle"] = await settle(proc, args.settle)

    srv_base = proc.sample()
    cpu0 = own_cpu()
    mach0 = MachineStats.sample()
    counter = IdleCounter()
    hb = Heartbeat(args.heart) if args.heart else None
    hb_task = asyncio.create_task(hb.run()) if hb else None

    def on_open(conn, uid: int) -> None:
        conn.set_handler(counter)
        if hb is not None:
            hb.add(conn, uid)

    t_conn = time.monotonic()
    conns, login_lat, failures = await open_many(args, users, n, args.timeout, on_open)
    t_conn = time.monotonic() - t_conn
    live = [c for c in conns if c is not None]
    del conns
    closed_while_connecting = counter.closed
    log(f"idle: {len(live)}/{n} connections logged in after {t_conn:.1f} s")
    if failures:
        log(f"WARNING: connection failures: {failures}")
    if closed_while_connecting:
        log(f"WARNING: the server closed {closed_while_connecting} connections meanwhile")
    if not args.heart and t_conn + args.idle_seconds > 100:
        log("note: no --heart; the server may close connections silent for its idle timeout")
    srv_conn = proc.sample()
    rss_samples = []
    t_hold = time.monotonic()
    while (left := args.idle_seconds - (time.monotonic() - t_hold)) > 0:
        await asyncio.sleep(min(5.0, left))
        s = proc.sample()
        if s:
            rss_samples.append(s["rss_kb"])
    held = time.monotonic() - t_hold
    srv_end = proc.sample()
    mach1 = MachineStats.sample()
    still_open = sum(1 for c in live if c.is_open)
    closed_by_server = counter.closed
    if still_open < len(live):
        log(f"WARNING: only {still_open}/{len(live)} connections were still open after the hold")
    if hb_task is not None:
        hb_task.cancel()
        await asyncio.gather(hb_task, return_exceptions=True)
    cpu1 = own_cpu()
    t_close = time.monotonic()
    await close_all(live)
    t_close = time.monotonic() - t_close
    await asyncio.sleep(1.0)
    srv_closed = proc.sample()

    result.update(
        {
            "connected": len(live),
            "failures": failures,
            "connect_s": round(t_conn, 2),
            "connects_per_s": round(len(live) / t_conn, 1) if t_conn else None,
            "login_latency_ms": latency_summary(login_lat),
            "held_s": round(held, 1),
            "still_open_at_end": still_open,
            "closed_by_server_while_connecting": closed_while_connecting,
            "closed_by_server_total": closed_by_server,
            "heart": {
                "interval_s": args.heart,
                "sent": hb.sent if hb else 0,
                "acked_ok": counter.acks_ok,
                "errors": counter.errors,
            },
            "pushes_while_idle": counter.pushes,
            "close_s": round(t_close, 2),
            "machine": MachineStats.delta(
                mach0,
                mach1,
                srv_end["cpu_s"] - srv_base["cpu_s"] if srv_base and srv_end else None,
                own_cpu() - cpu0,
            ),
            "loadgen": {
                "client": args.client,
                "cpu_s": round(cpu1 - cpu0, 3),
                "rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
            },
        }
    )
    if srv_base and srv_end and live:
        result["server"] = {
            "rss_baseline_kb": srv_base["rss_kb"],
            "rss_connected_kb": srv_conn["rss_kb"] if srv_conn else None,
            "rss_end_of_hold_kb": srv_end["rss_kb"],
            "rss_max_during_hold_kb": max(rss_samples) if rss_samples else srv_end["rss_kb"],
            "rss_after_close_kb": srv_closed["rss_kb"] if srv_closed else None,
            "rss_peak_kb": srv_end["hwm_kb"],
            # Per connection still open at the end of the hold; when some were closed
            # early the figure is not trustworthy (freed memory is not returned).
            "rss_per_idle_connection_kb": round(
                (srv_end["rss_kb"] - srv_base["rss_kb"]) / max(still_open, 1), 2
            ),
            "rss_per_idle_connection_reliable": still_open == len(live),
            "cpu_s_connect_and_hold": round(srv_end["cpu_s"] - srv_base["cpu_s"], 3),
            "threads": srv_end["threads"],
        }
    return result


# ---------------------------------------------------------------------- reporting


def print_machine(r: dict) -> None:
    m = r.get("machine")
    if not m:
        return
    cores = ", ".join(f"{k} {v}%" for k, v in m["core_busy_pct"].items())
    print(f"  machine: busy {cores}; load average {m['loadavg_start'][0]} -> {m['loadavg_end'][0]}")
    others = m["other_processes_pct_of_one_core"]
    if others is not None and others > 10:
        print(
            f"  !! other processes used {others}% of a core during the measurement: "
            "the figures are disturbed"
        )


def expected_missing(d: dict) -> int:
    return d["expected"] - d["received"]


def print_summary(args, r: dict) -> None:
    p = print
    if r["mode"] == "idle":
        p(f"rim loadgen, idle: {r['connected']}/{r['connections_requested']} connections ")
        p(f"  ({r['users']} users), opened in {r['connect_s']} s ({r['connects_per_s']}/s)")
        ll = r["login_latency_ms"]
        p(f"  ws login latency ms: p50 {fmt_ms(ll['p50'])}  p99 {fmt_ms(ll['p99'])}")
        p(f"  failures: {r['failures'] or 'none'}")
        p(
            f"  still open after the hold: {r['still_open_at_end']}; closed by the server: "
            f"{r['closed_by_server_total']}"
        )
        if args.heart:
            p(f"  heart every {args.heart} s: {r['heart']}")
        s = r.get("server")
        if s:
            p(
                f"  server RSS: baseline {s['rss_baseline_kb'] / 1024:.1f} MiB, "
                f"connected {s['rss_end_of_hold_kb'] / 1024:.1f} MiB, "
                f"after close {(s['rss_after_close_kb'] or 0) / 1024:.1f} MiB"
            )
            note = "" if s["rss_per_idle_connection_reliable"] else " (!! connections closed early)"
            p(f"  => server RSS per idle connection: {s['rss_per_idle_connection_kb']} KiB{note}")
            p(f"  server CPU while connecting+holding: {s['cpu_s_connect_and_hold']} s")
        p(f"  loadgen CPU: {r['loadgen']['cpu_s']} s")
        print_machine(r)
        return

    m, d = r["messages"], r["deliveries"]
    al, dl = r["ack_latency_ms"], r["delivery_latency_ms"]
    p(
        f"rim loadgen: {args.users} users, group size {args.group_size}, "
        f"{args.msgs_per_user} msgs/user, window {args.window}, "
        f"rate {args.rate or 'unpaced'}, acks/{args.acks or '-'} reads/{args.reads or '-'}"
    )
    p(
        f"  messages: {m['acked_ok']}/{m['planned']} acked ok, sent {m['sent']}, "
        f"unacked {m['unacked']}"
    )
    p(f"  acked msgs/s: {r['acked_msgs_per_s']} (over {r['ack_span_s']} s)")
    p(
        f"  ack latency ms: p50 {fmt_ms(al['p50'])}  p95 {fmt_ms(al['p95'])}  "
        f"p99 {fmt_ms(al['p99'])}  max {fmt_ms(al['max'])}"
    )
    p(
        f"  deliveries: expected {d['expected']}  received {d['received']}  lost {d['lost']}  "
        f"duplicated {d['duplicated']}  out-of-order {d['out_of_order']}"
    )
    p(
        f"  delivery latency ms: p50 {fmt_ms(dl['p50'])}  p99 {fmt_ms(dl['p99'])}  "
        f"max {fmt_ms(dl['max'])};  deliveries/s: {r['deliveries_per_s']}"
    )
    if d["drain_timed_out"]:
        p(
            f"  !! {expected_missing(d)} deliveries had not arrived {d['drain_wait_s']} s after "
            "the last ack (--drain): counted as lost"
        )
    if d["of_unacked_messages"] or d["foreign_pushes"] or d["extra_beyond_expected"]:
        p(
            f"  note: {d['of_unacked_messages']} deliveries of unacked messages, "
            f"{d['foreign_pushes']} foreign pushes, {d['extra_beyond_expected']} extra"
        )
    errs = dict(m["errors"])
    for k, v in r["control"]["errors"].items():
        errs[f"{k} (Ack/Read)"] = v
    p(f"  errors (non-Ok acks by code): {errs or 'none'}")
    ctl = r["control"]
    if ctl["sent"]:
        p(
            f"  client Ack/Read events: sent {ctl['sent']}, answered {ctl['acked']}, "
            f"Read pushes {d['read_pushes']}"
        )
    rl = m["errors"].get("rate_limited", 0) + r["control"]["errors"].get("rate_limited", 0)
    if rl:
        p(
            f"  !! {rl} events were rate_limited by the server: raise RIM_RATE_LIMIT / "
            "RIM_RATE_BURST for benchmarks"
        )
    if r["setup"]["ws_login_failures"]:
        p(f"  ws login failures: {r['setup']['ws_login_failures']}")
    if r["connections_closed_during_run"]:
        p(f"  !! connections closed during the run: {r['close_reasons']}")
    if m["timed_out"]:
        p("  !! the load phase hit --timeout")
    s = r.get("server")
    if s:
        p(
            f"  server: cpu {s['cpu_s']} s ({s['cpu_pct_of_one_core']}% of one core), "
            f"rss {s['rss_before_kb'] / 1024:.1f} -> {s['rss_after_kb'] / 1024:.1f} MiB "
            f"(peak {s['rss_peak_kb'] / 1024:.1f} MiB), threads {s['threads']}"
        )
    print_machine(r)
    lg = r["loadgen"]
    p(
        f"  loadgen: cpu {lg['cpu_s']} s ({lg['cpu_pct_of_one_core']}% of one core), "
        f"wall {r['wall_s']} s"
    )


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        description="rim load generator (loopback only)",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    ap.add_argument("--scenario", choices=sorted(SCENARIOS), help="preset of issue 6")
    ap.add_argument("--url", default="http://127.0.0.1:8000", help="HTTP base for REST")
    ap.add_argument("--ws-url", help="WebSocket URL (default: --url with ws:// and /ws)")
    ap.add_argument("--origin", help="Origin header (default: --url)")
    ap.add_argument("--users", type=int, help=f"users (default {DEFAULTS['users']})")
    ap.add_argument(
        "--group-size", type=int, help=f"members per group (default {DEFAULTS['group_size']})"
    )
    ap.add_argument("--msgs-per-user", type=int, help=f"(default {DEFAULTS['msgs_per_user']})")
    ap.add_argument(
        "--window", type=int, help=f"in-flight Msg per user (default {DEFAULTS['window']})"
    )
    ap.add_argument("--rate", type=float, default=0.0, help="total msgs/s pacing; 0 = unpaced")
    ap.add_argument("--acks", type=int, default=0, help="send an Ack every N received pushes")
    ap.add_argument("--reads", type=int, default=0, help="send a Read every N received pushes")
    ap.add_argument("--idle", type=int, help="idle mode: hold N logged-in connections")
    ap.add_argument("--idle-seconds", type=float, help="idle mode hold time")
    ap.add_argument("--idle-users", type=int, default=100, help="idle mode: distinct users")
    ap.add_argument(
        "--heart",
        type=float,
        default=60.0,
        help="Heart interval per connection, s (the server closes silent connections after "
        "RIM_IDLE_TIMEOUT, 120 s); 0 = off",
    )
    ap.add_argument("--server-pid", type=int, help="server pid for CPU/RSS from /proc")
    ap.add_argument("--json", metavar="PATH", help="write the result as JSON")
    ap.add_argument("--seed", type=int, default=1, help="seed for pacing jitter")
    ap.add_argument("--timeout", type=float, default=300.0, help="bound of each phase, s")
    ap.add_argument(
        "--drain", type=float, default=30.0, help="wait for deliveries after the last ack, s"
    )
    ap.add_argument(
        "--settle",
        type=float,
        default=60.0,
        help="with --server-pid: wait up to S s for an idle server before measuring",
    )
    ap.add_argument("--setup-concurrency", type=int, default=16)
    ap.add_argument("--connect-concurrency", type=int, default=16)
    ap.add_argument(
        "--client",
        choices=("raw", "websockets"),
        default="raw",
        help="WebSocket client: lean built-in frames, or the websockets library",
    )
    ap.add_argument("--prefix", help="account prefix (default: random per run)")
    ap.add_argument("--quiet", action="store_true", help="no human summary on stdout")
    args = ap.parse_args(argv)

    preset = SCENARIOS.get(args.scenario, {})
    for key, default in DEFAULTS.items():
        if getattr(args, key) is None:
            setattr(args, key, preset.get(key, default))
    if args.ws_url is None:
        parts = urlsplit(args.url)
        scheme = "wss" if parts.scheme == "https" else "ws"
        args.ws_url = f"{scheme}://{parts.netloc}/ws"
    if args.origin is None:
        args.origin = args.url.rstrip("/")
    if args.prefix is None:
        args.prefix = f"lg{time.time_ns() // 1000 % 10**10:x}{os.getpid() % 1000:03d}"
    require_loopback(args.url, "--url")
    require_loopback(args.ws_url, "--ws-url")
    limits = [
        ("users", 1, 100_000),
        ("group_size", 2, 10_000),
        ("msgs_per_user", 0, 1_000_000),
        ("window", 1, 10_000),
        ("idle", 0, 60_000),
        ("idle_users", 1, 100_000),
    ]
    for key, lo, hi in limits:
        v = getattr(args, key)
        if not lo <= v <= hi:
            die(f"--{key.replace('_', '-')} must be within {lo}..{hi}")
    if not 0 < args.timeout <= 3600 or not 0 <= args.drain <= 600:
        die("--timeout must be in (0, 3600], --drain in [0, 600]")
    if not 0 <= args.idle_seconds <= 7200:
        die("--idle-seconds must be within 0..7200")
    return args


async def amain(args: argparse.Namespace) -> dict:
    proc = ProcStats(args.server_pid)
    rest = Rest(args.url, args.setup_concurrency, timeout=min(args.timeout, 120.0))
    try:
        if args.idle:
            return await run_idle(args, rest, proc)
        return await run_load(args, rest, proc)
    finally:
        rest.close()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    needed = (args.idle or args.users) + 256
    nofile = raise_nofile(needed)
    if nofile < needed:
        die(f"RLIMIT_NOFILE is {nofile}, need about {needed}: raise the hard limit (ulimit -Hn)")
    started = time.time()
    try:
        result = asyncio.run(amain(args))
    except RestError as e:
        die(f"setup failed: {e}")
    result["config"] = {
        k: getattr(args, k)
        for k in (
            "scenario",
            "url",
            "ws_url",
            "users",
            "group_size",
            "msgs_per_user",
            "window",
            "rate",
            "acks",
            "reads",
            "idle",
            "idle_seconds",
            "idle_users",
            "heart",
            "client",
            "seed",
            "server_pid",
        )
    }
    result["started"] = time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started))
    result["argv"] = sys.argv
    if not args.quiet:
        print_summary(args, result)
    if args.json:
        with open(args.json, "wb") as f:
            f.write(orjson.dumps(result, option=orjson.OPT_INDENT_2))
    ok = result.get("deliveries", {}).get("lost", 0) == 0 and not result.get("messages", {}).get(
        "timed_out"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
