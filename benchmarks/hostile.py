#!/usr/bin/env python3
"""The hostile mix of issue 11: loadgen's paced load plus clients that misbehave, in one
process (benchmarks/soak.py runs it).

    hostile.py [mix options] -- LOADGEN OPTIONS

The well-behaved load is loadgen.py's load mode, unchanged (its options after `--`).
Beside it, from the start of the load to its end:

* slow readers (`--slow-readers`, default 5% of the users): log in on a raw socket with
  a small receive buffer (`--rcvbuf`), then never read it again; a Heart every
  `--slow-heart` s (30) keeps them from looking idle. Each is an extra member of one of
  the load's groups, so pushes pile up for it. One the server closes comes back after
  `--pause` s as a new session. At the end each session still open reads everything
  the server queued (at most `--drain` s) and counts the answers to its frames.
* flooders (`--flooders`, default 5% of the users): logged-in members of the load's
  groups that send `--flood-burst` Msg frames back to back, wait for the answers, pause
  `--pause` s and flood again; one closed by the server reconnects after the pause.
* a stream of connections that never log in (one every `--no-login-every` s): each
  waits for the server to close it (`RIM_LOGIN_TIMEOUT`, code 4002) and gives up
  `--no-login-grace` s after the deadline.

The contract checked: every frame of a client that the server did not close gets
exactly one MsgAck; a closed one gets at most one per frame; closes are counted by
code. The JSON (`--json`) is loadgen's result with a "hostile" section added.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import collections
import contextlib
import os
import socket
import struct
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))

import loadgen
from loadgen import ConnClosed, frame, log

TCP_ESTABLISHED = 1


def count(counter: dict, key) -> None:
    counter[key] = counter.get(key, 0) + 1


def answers_check(sent: list[str], acks: collections.Counter, closed: bool) -> dict:
    """Frames of one session without an answer, and answers beyond one per frame."""
    missing = sum(1 for cmid in sent if acks[cmid] == 0)
    extra = sum(max(0, acks[cmid] - 1) for cmid in sent)
    unknown = sum(n for cmid, n in acks.items() if cmid not in set(sent))
    return {
        "missing": 0 if closed else missing,
        "unanswered_at_close": missing if closed else 0,
        "extra": extra,
        "unknown": unknown,
    }


def add_check(total: dict, one: dict) -> None:
    for k, v in one.items():
        total[k] = total.get(k, 0) + v


# --------------------------------------------------------------- slow readers


class SlowReader:
    """One session: a raw socket that logs in and then is not read (until the end)."""

    def __init__(self, mix: Mix, uid: int, token: str) -> None:
        self.mix = mix
        self.uid = uid
        self.token = token
        self.sock: socket.socket | None = None
        self.buf = bytearray()
        self.sent: list[str] = []
        self.acks: collections.Counter = collections.Counter()
        self.close_code: str | None = None  # once the server has closed it
        self.pushes = 0
        self.bytes_read = 0
        self.login_answer: str | None = None
        self.ended: str | None = None  # how the final read ended, without a close frame
        self.opened_at = time.monotonic()

    async def open(self) -> None:
        loop = asyncio.get_running_loop()
        url = urlsplit(self.mix.largs.ws_url)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        # Before connect, so that the window the server sees is small from the start.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.mix.hargs.rcvbuf)
        sock.setblocking(False)
        self.sock = sock
        async with asyncio.timeout(30):
            await loop.sock_connect(sock, (url.hostname, url.port or 80))
            key = base64.b64encode(os.urandom(16))
            await loop.sock_sendall(
                sock, loadgen.handshake_request(self.mix.largs.ws_url, self.mix.largs.origin, key)
            )
            while b"\r\n\r\n" not in self.buf:
                await self.read_some()
            head, _, rest = bytes(self.buf).partition(b"\r\n\r\n")
            if not loadgen.handshake_accepted(head, key):
                raise ConnClosed(f"handshake refused: {head[:40]!r}")
            self.buf = bytearray(rest)
            await self.send("Login", "login", self.token)
            while self.acks["login"] == 0:
                self.parse()
                if self.acks["login"] or self.close_code:
                    break
                await self.read_some()
        if self.close_code or self.login_answer != "Ok":
            raise ConnClosed(f"login refused: {self.login_answer or self.close_code}")

    async def read_some(self, limit: int = 65536) -> int:
        data = await asyncio.get_running_loop().sock_recv(self.sock, limit)
        if not data:
            raise ConnClosed("eof")
        self.buf += data
        self.bytes_read += len(data)
        return len(data)

    async def send(self, event: str, cmid: str, content: str = "") -> None:
        payload = frame(event, self.uid, None, content, cmid)
        self.sent.append(cmid)
        async with asyncio.timeout(30):
            await asyncio.get_running_loop().sock_sendall(self.sock, loadgen.client_frame(payload))

    def parse(self) -> None:
        """Account every whole frame in the buffer."""
        buf = self.buf
        pos = 0
        while len(buf) - pos >= 2:
            op, ln, hdr = buf[pos] & 0x0F, buf[pos + 1] & 0x7F, 2
            if ln == 126:
                if len(buf) - pos < 4:
                    break
                ln, hdr = struct.unpack_from(">H", buf, pos + 2)[0], 4
            elif ln == 127:
                if len(buf) - pos < 10:
                    break
                ln, hdr = struct.unpack_from(">Q", buf, pos + 2)[0], 10
            if len(buf) - pos < hdr + ln:
                break
            payload = bytes(buf[pos + hdr : pos + hdr + ln])
            pos += hdr + ln
            if op == 8:
                self.close_code = str(int.from_bytes(payload[:2], "big")) if ln >= 2 else "1005"
            elif op == 1 and payload.startswith(b'{"event"'):
                self.pushes += 1
            elif op == 1:
                d = orjson.loads(payload)
                cmid = d.get("clientMsgId")
                self.acks[cmid] += 1
                if cmid == "login":
                    self.login_answer = d.get("content")
        del buf[:pos]

    def server_closed(self) -> bool:
        """The peer has closed (FIN or RST), seen without reading the socket."""
        try:
            info = self.sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)
        except OSError:
            return True
        return info[0] != TCP_ESTABLISHED

    async def drain(self, limit: float) -> None:
        """Read what the server queued for us (at most `limit` s), accounting it: until
        the close frame or EOF, or every frame is answered and nothing more comes."""
        deadline = time.monotonic() + limit
        try:
            while not self.close_code and (left := deadline - time.monotonic()) > 0:
                answered = all(self.acks[c] for c in self.sent)
                try:
                    async with asyncio.timeout(min(left, 0.5 if answered else 2.0)):
                        await self.read_some(1 << 20)
                except TimeoutError:
                    if answered:
                        break
                    continue
                self.parse()
        except ConnClosed:
            self.ended = "eof without a close frame"
        except OSError as exc:
            self.ended = f"{type(exc).__name__} without a close frame"
        self.parse()

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()


async def slow_reader_slot(mix: Mix, uid: int, token: str) -> None:
    st = mix.stats["slow_readers"]
    h = mix.hargs
    while not mix.stopping.is_set():
        r = SlowReader(mix, uid, token)
        try:
            await r.open()
        except (OSError, ConnClosed, TimeoutError, ValueError) as exc:
            count(st["open_failures"], f"{type(exc).__name__}: {exc}")
            r.close()
            await mix.pause(h.pause)
            continue
        st["sessions"] += 1
        next_heart = time.monotonic() + h.slow_heart
        closed = False
        while not mix.stopping.is_set():
            await mix.pause(1.0)
            if r.server_closed():
                closed = True
                break
            if time.monotonic() >= next_heart:
                next_heart += h.slow_heart
                try:
                    await r.send("Heart", f"h{len(r.sent)}")
                    st["hearts"] += 1
                except (OSError, TimeoutError) as exc:
                    count(st["heart_failures"], type(exc).__name__)
                    closed = r.server_closed()
                    break
        await r.drain(h.drain if not closed else 10.0)
        closed = closed or r.close_code is not None or r.ended is not None or r.server_closed()
        if closed:
            count(st["closes"], r.close_code or r.ended or "closed without a close frame")
            st["closed_after_s"].append(round(time.monotonic() - r.opened_at))
        else:
            st["open_at_end"] += 1
        add_check(st["answers"], answers_check(r.sent, r.acks, closed))
        st["pushes_read"] += r.pushes
        st["bytes_read"] += r.bytes_read
        r.close()
        if closed:
            await mix.pause(h.pause)


# --------------------------------------------------------------- flooders


async def flooder_slot(mix: Mix, uid: int, token: str, gid: int) -> None:
    st = mix.stats["flooders"]
    h = mix.hargs
    largs = mix.largs
    while not mix.stopping.is_set():
        try:
            conn, _ = await loadgen.open_and_login(largs, uid, token, 30)
        except loadgen.SETUP_ERRORS as exc:
            count(st["open_failures"], type(exc).__name__)
            await mix.pause(h.pause)
            continue
        st["sessions"] += 1
        sent: list[str] = []
        acks: collections.Counter = collections.Counter()
        answered = asyncio.Event()
        waiting = [0]  # frames sent and not answered yet

        def on_frame(raw: bytes | None, acks=acks, answered=answered, waiting=waiting) -> None:
            if raw is None:
                answered.set()
                return
            d = orjson.loads(raw)
            if d.get("event") is not None:
                st["pushes"] += 1
                return
            cmid = d.get("clientMsgId")
            acks[cmid] += 1
            count(st["answers_by_code"], str(d.get("content")))
            if acks[cmid] == 1 and cmid[:1] == "f":
                waiting[0] -= 1
                if waiting[0] <= 0:
                    answered.set()

        conn.set_handler(on_frame)
        while not mix.stopping.is_set() and conn.is_open:
            answered.clear()
            base = len(sent)
            try:
                for n in range(base, base + h.flood_burst):
                    sent.append(f"f{n}")
                    waiting[0] += 1
                    await conn.send(frame("Msg", uid, gid, f"flood {n}", f"f{n}"))
            except ConnClosed:
                sent.pop()
                waiting[0] -= 1
                break
            st["frames"] += len(sent) - base
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(60):
                    await answered.wait()
            await mix.pause(h.pause)
        # Answers still on their way when the load ended.
        if conn.is_open:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(10):
                    while waiting[0] > 0 and conn.is_open:
                        await asyncio.sleep(0.05)
        closed = not conn.is_open
        if closed:
            count(st["closes"], conn.close_reason())
        else:
            st["open_at_end"] += 1
        add_check(st["answers"], answers_check(sent, acks, closed))
        await conn.close()
        if closed:
            await mix.pause(h.pause)


# --------------------------------------------------------------- no login


async def no_login_one(mix: Mix) -> None:
    st = mix.stats["no_login"]
    largs = mix.largs
    t0 = time.monotonic()
    try:
        conn = await loadgen.RawConn.open(largs.ws_url, largs.origin, 30)
    except (OSError, ConnClosed, TimeoutError) as exc:
        count(st["open_failures"], type(exc).__name__)
        return
    st["opened"] += 1
    frames = []

    def on_frame(raw: bytes | None) -> None:
        if raw is not None:
            frames.append(raw)

    conn.set_handler(on_frame)
    limit = mix.hargs.login_timeout + mix.hargs.no_login_grace
    try:
        async with asyncio.timeout(limit - (time.monotonic() - t0)):
            await asyncio.shield(conn.lost)
    except TimeoutError:
        st["not_closed_in_time"] += 1
        conn.abort()
        return
    finally:
        st["frames_received"] += len(frames)
    count(st["closes"], conn.close_reason())
    st["close_after_s"].append(round(time.monotonic() - t0, 2))


async def no_login_stream(mix: Mix) -> None:
    tasks = set()
    while not mix.stopping.is_set():
        task = asyncio.create_task(no_login_one(mix))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        await mix.pause(mix.hargs.no_login_every)
    if tasks:  # each ends by its own deadline
        await asyncio.gather(*tasks, return_exceptions=True)


# --------------------------------------------------------------- the mix


class Mix:
    """The hostile clients; loadgen.run_load calls the hooks."""

    def __init__(self, hargs, largs, slow: list[tuple], flood: list[tuple]) -> None:
        self.hargs = hargs
        self.largs = largs
        self.slow = slow
        self.flood = flood
        self.gids: list[int] = []
        self.groups = len(loadgen.partition(largs.users, largs.group_size))
        self.stopping = asyncio.Event()
        self.tasks: list[asyncio.Task] = []
        self.started_at = None

        def client_stats(*extra: str) -> dict:
            d = {"sessions": 0, "open_at_end": 0, "closes": {}, "open_failures": {}}
            d["answers"] = {"missing": 0, "unanswered_at_close": 0, "extra": 0, "unknown": 0}
            d.update({k: 0 for k in extra})
            return d

        self.stats = {
            "slow_readers": {
                **client_stats("hearts", "pushes_read", "bytes_read"),
                "heart_failures": {},
                "closed_after_s": [],
            },
            "flooders": {**client_stats("frames", "pushes"), "answers_by_code": {}},
            "no_login": {
                "opened": 0,
                "closes": {},
                "open_failures": {},
                "not_closed_in_time": 0,
                "frames_received": 0,
                "close_after_s": [],
            },
        }

    # loadgen.run_load's hooks
    def extra_members(self, k: int) -> list[int]:
        """Slow reader i and flooder i join group i mod the number of groups."""
        return [
            uid
            for clients in (self.slow, self.flood)
            for i, (uid, _) in enumerate(clients)
            if i % self.groups == k
        ]

    def groups_created(self, gids: list[int]) -> None:
        self.gids = gids

    def load_started(self) -> None:
        self.started_at = time.monotonic()
        log(
            f"hostile: {len(self.slow)} slow readers, {len(self.flood)} flooders, a connection "
            f"without Login every {self.hargs.no_login_every:g} s"
        )
        for uid, token in self.slow:
            self.tasks.append(asyncio.create_task(slow_reader_slot(self, uid, token)))
        for i, (uid, token) in enumerate(self.flood):
            gid = self.gids[i % self.groups]
            self.tasks.append(asyncio.create_task(flooder_slot(self, uid, token, gid)))
        if self.hargs.no_login_every > 0:
            self.tasks.append(asyncio.create_task(no_login_stream(self)))

    async def pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self.stopping.wait()

    async def stop(self) -> dict:
        self.stopping.set()
        limit = self.hargs.drain + self.hargs.login_timeout + self.hargs.no_login_grace + 30
        done, pending = await asyncio.wait(self.tasks, timeout=limit) if self.tasks else ((), ())
        for task in pending:
            task.cancel()
        errors: dict[str, int] = {}
        for task in done:
            if task.exception() is not None:
                count(errors, repr(task.exception()))
        for kind, key in (("no_login", "close_after_s"), ("slow_readers", "closed_after_s")):
            after = sorted(self.stats[kind][key])
            self.stats[kind][key] = {
                "p50": loadgen.pct(after, 50),
                "max": after[-1] if after else None,
            }
        return {
            **self.stats,
            "login_timeout_s": self.hargs.login_timeout,
            "task_errors": errors,
            "tasks_cancelled": len(pending),
            "seconds": round(time.monotonic() - (self.started_at or time.monotonic()), 1),
        }


async def amain(hargs, largs) -> dict:
    proc = loadgen.ProcStats(largs.server_pid)
    rest = loadgen.Rest(largs.url, largs.setup_concurrency, timeout=min(largs.timeout, 120.0))
    try:
        n = hargs.slow_readers + hargs.flooders
        users = await loadgen.register_users(rest, f"{largs.prefix}x", n, largs.setup_concurrency)
        mix = Mix(hargs, largs, users[: hargs.slow_readers], users[hargs.slow_readers :])
        result = await loadgen.run_load(largs, rest, proc, mix)
        result["hostile"] = await mix.stop()
        return result
    finally:
        rest.close()


def parse_args(argv: list[str]) -> tuple[argparse.Namespace, argparse.Namespace]:
    if "--" in argv:
        i = argv.index("--")
        mine, theirs = argv[:i], argv[i + 1 :]
    else:
        mine, theirs = argv, []
    largs = loadgen.parse_args(theirs)
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    five = max(1, round(0.05 * largs.users))
    ap.add_argument("--slow-readers", type=int, default=five, help="default: 5%% of the users")
    ap.add_argument("--flooders", type=int, default=five, help="default: 5%% of the users")
    ap.add_argument("--rcvbuf", type=int, default=4096, help="slow readers' SO_RCVBUF, bytes")
    ap.add_argument("--slow-heart", type=float, default=30.0, help="slow readers' Heart, s")
    ap.add_argument("--flood-burst", type=int, default=400, help="Msg frames per flood")
    ap.add_argument("--pause", type=float, default=5.0, help="between floods / reconnects, s")
    ap.add_argument("--no-login-every", type=float, default=1.0, help="s; 0 = none")
    ap.add_argument(
        "--login-timeout",
        type=float,
        default=float(os.environ.get("RIM_LOGIN_TIMEOUT") or 30),
        help="the server's RIM_LOGIN_TIMEOUT (default: from the environment, else 30)",
    )
    ap.add_argument("--no-login-grace", type=float, default=15.0, help="s past the deadline")
    ap.add_argument("--drain", type=float, default=60.0, help="slow readers' final read, s")
    hargs = ap.parse_args(mine)
    if not 0 <= hargs.slow_readers <= 1000 or not 0 <= hargs.flooders <= 1000:
        ap.error("--slow-readers and --flooders within 0..1000")
    if not 1 <= hargs.flood_burst <= 100_000 or not 512 <= hargs.rcvbuf <= 1 << 22:
        ap.error("--flood-burst within 1..100000, --rcvbuf within 512..4 MiB")
    if largs.idle:
        ap.error("the hostile mix goes with load mode, not --idle")
    return hargs, largs


def main(argv: list[str] | None = None) -> int:
    hargs, largs = parse_args(sys.argv[1:] if argv is None else argv)
    loadgen.raise_nofile(largs.users + hargs.slow_readers + hargs.flooders + 1024)
    try:
        result = asyncio.run(amain(hargs, largs))
    except loadgen.RestError as e:
        loadgen.die(f"setup failed: {e}")
    result["argv"] = sys.argv
    if not largs.quiet:
        loadgen.print_summary(largs, result)
        print("  hostile: " + orjson.dumps(result["hostile"]).decode())
    if largs.json:
        Path(largs.json).write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))
    return 0 if result["deliveries"]["lost"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
