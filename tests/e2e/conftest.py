"""Fixtures and clients for the end-to-end tests: real daphne processes (tests.live)
spoken to with a real WebSocket client (the `websockets` package).

Every server started here is killed at teardown, also when the test failed; every
wait is bounded.
"""

import asyncio
import json
import os
import shutil
import signal
import subprocess
import time
import uuid
from collections import deque
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from tests.live import (
    POSTGRES_ADMIN_URL,
    REDIS_URL,
    RIM_SERVER,
    ApiError,
    DaphneServer,
    api,
    frame,
    free_port,
    fresh_postgres_database,
    register,
    wait_for_port,
)
from tests.services import unreachable

# Seconds any single wait for a frame may take; generous for a loaded 2-core machine.
FRAME_TIMEOUT = 15.0
# How long "nothing arrives" is watched for.
QUIET = 1.0


class WsClient:
    """One WebSocket connection speaking rim's MsgEvent protocol.

    Frames are read by whoever waits: acks (frames without "event") are kept by
    clientMsgId, pushes (frames with "event") in arrival order, so a test can send
    many events and then collect their acks while pushes pile up for later.
    """

    def __init__(self, ws: ClientConnection, name: str = "client"):
        self.ws = ws
        self.name = name
        self.uid: int | None = None
        self.acks: dict[str | None, dict] = {}
        self.pushes: deque[dict] = deque()

    @classmethod
    async def open(cls, url: str, name: str = "client", **kwargs) -> "WsClient":
        ws = await connect(url, open_timeout=FRAME_TIMEOUT, close_timeout=5, **kwargs)
        return cls(ws, name)

    async def close(self) -> None:
        await self.ws.close()

    async def _read_one(self, timeout: float) -> None:
        raw = await asyncio.wait_for(self.ws.recv(), timeout)
        data = json.loads(raw)
        if "event" in data:
            self.pushes.append(data)
        else:
            self.acks[data.get("clientMsgId")] = data

    async def send_raw(self, text: str) -> None:
        await self.ws.send(text)

    async def ack_for(self, cmid: str | None, timeout: float = FRAME_TIMEOUT) -> dict:
        deadline = time.monotonic() + timeout
        while cmid not in self.acks:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"{self.name}: no ack for {cmid!r} within {timeout} s")
            await self._read_one(left)
        return self.acks.pop(cmid)

    async def request(self, event: str, *, timeout: float = FRAME_TIMEOUT, **fields) -> dict:
        """Send one event (as tests.live.frame builds it) and wait for its ack."""
        cmid = fields.pop("cmid", None) or uuid.uuid4().hex
        uid = fields.pop("uid", self.uid)
        await self.ws.send(frame(event, uid, cmid=cmid, **fields))
        return await self.ack_for(cmid, timeout)

    async def login(self, uid: int, token: str) -> dict:
        self.uid = uid
        ack = await self.request("Login", uid=uid, gid=3, content=token)
        assert ack["content"] == "Ok", f"{self.name}: login refused: {ack}"
        return ack

    async def send_msg(self, gid: int, content: str, **fields) -> dict:
        ack = await self.request("Msg", gid=gid, content=content, **fields)
        assert ack["content"] == "Ok", f"{self.name}: Msg refused: {ack}"
        assert isinstance(ack["serverMsgId"], int), ack
        return ack

    async def next_push(self, timeout: float = FRAME_TIMEOUT) -> dict:
        deadline = time.monotonic() + timeout
        while not self.pushes:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"{self.name}: no push within {timeout} s")
            await self._read_one(left)
        return self.pushes.popleft()

    async def collect_pushes(
        self, count: int, timeout: float = FRAME_TIMEOUT, event: str | None = None
    ) -> list[dict]:
        """The next `count` pushes (of `event` only, if given; others are discarded)."""
        deadline = time.monotonic() + timeout
        found: list[dict] = []
        while len(found) < count:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(
                    f"{self.name}: {len(found)} of {count} pushes within {timeout} s: {found}"
                )
            push = await self.next_push(left)
            if event is None or push["event"] == event:
                found.append(push)
        return found

    async def quiet(self, within: float = QUIET) -> list[dict]:
        """Every push that arrives within `within` seconds (a test expects none)."""
        deadline = time.monotonic() + within
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                await self._read_one(left)
            except TimeoutError:
                break
        found = list(self.pushes)
        self.pushes.clear()
        return found

    async def closed_with(self, timeout: float = FRAME_TIMEOUT) -> int | None:
        """Wait for the server to close the connection, keeping the frames that come
        before (acks by clientMsgId, pushes in order); its close code."""
        try:
            async with asyncio.timeout(timeout):
                while True:
                    await self._read_one(timeout)
        except ConnectionClosed as closed:
            return closed.rcvd.code if closed.rcvd else None

    @property
    def is_open(self) -> bool:
        return self.ws.close_code is None


class ServerPool:
    """Servers started by one fixture; all of them are killed when it ends."""

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.servers: list[DaphneServer] = []

    def new(
        self, name: str, env: dict[str, str] | None = None, kind: str = RIM_SERVER
    ) -> DaphneServer:
        server = DaphneServer(self.workdir / name, env=env, name=name, kind=kind)
        self.servers.append(server)
        return server

    def kill_all(self) -> None:
        for server in self.servers:
            server.kill()


@contextmanager
def server_pool(workdir: Path):
    pool = ServerPool(workdir)
    try:
        yield pool
    finally:
        pool.kill_all()


@pytest.fixture
def servers(tmp_path):
    with server_pool(tmp_path) as pool:
        yield pool


class User:
    """A registered account: uid and a REST token."""

    def __init__(self, uid: int, token: str, account: str):
        self.uid = uid
        self.token = token
        self.account = account

    def __repr__(self) -> str:
        return f"User({self.account}#{self.uid})"


def new_user(base_url: str, prefix: str) -> User:
    account = f"{prefix}{uuid.uuid4().hex[:8]}"
    uid, token = register(base_url, account)
    return User(uid, token, account)


def create_group(base_url: str, creator: User, members: list[User], name: str = "g") -> int:
    return api(
        base_url,
        "group/create",
        {
            "group": {"name": name, "avatar": "", "mode": 2, "creatorUid": creator.uid},
            "users": [{"uid": m.uid, "role": 1} for m in members],
        },
        token=creator.token,
    )


def history(base_url: str, user: User, gid: int, size: int = 100) -> list[dict]:
    entries = api(
        base_url,
        "message/history",
        {"gid": gid, "uid": user.uid, "page": 1, "size": size},
        token=user.token,
    )
    return [entry["msg"] for entry in entries]


async def connected(url: str, user: User, name: str | None = None) -> WsClient:
    client = await WsClient.open(url, name or user.account)
    await client.login(user.uid, user.token)
    return client


async def in_thread(function, *args):
    """Blocking helpers (REST calls, server start/kill) off the event loop, so that
    open WebSockets keep being served meanwhile."""
    return await asyncio.to_thread(function, *args)


async def use_token_everywhere(server: DaphneServer) -> User:
    """A session that uses its token everywhere a token travels: REST login, Bearer
    header, GET /api/user/token?token=..., WebSocket Login, a refused Login, Logout and
    REST logout. The user, once the server has logged all of it."""
    alice = await in_thread(new_user, server.http_url, "alice")
    query = f"user/token?token={alice.token}"
    owner = await in_thread(api, server.http_url, query, None, alice.token)
    assert owner["id"] == alice.uid
    # A query string the server refuses is a classic place for it to end up in a log.
    with pytest.raises(ApiError):
        await in_thread(api, server.http_url, f"{query}x", None, alice.token)
    client = await WsClient.open(server.ws_url, "alice")
    try:
        refused = await client.request("Login", uid=alice.uid + 1000, content=alice.token)
        assert refused["content"] == "auth_failed"
        await client.login(alice.uid, alice.token)
        assert (await client.request("Logout"))["content"] == "Ok"
    finally:
        await client.close()
    assert await in_thread(api, server.http_url, "user/logout", {}, alice.token) is True
    await asyncio.sleep(0.5)  # the close is logged after the socket goes
    return alice


def assert_no_token(text: str, token: str) -> None:
    for form in (token, token.replace("-", ""), token.upper()):
        assert form not in text


class PrivateRedis:
    """A redis-server of our own on a free port, to stop and start at will without
    disturbing the shared one."""

    def __init__(self, workdir: Path, *extra_args: str):
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail("redis-server is not installed: the fault tests need it")
        self.binary = binary
        self.workdir = workdir
        self.port = free_port()
        self.extra_args = list(extra_args)
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        log = (self.workdir / "redis.log").open("a")
        self.process = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
                *self.extra_args,
            ],
            cwd=self.workdir,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_for_port(self.port, timeout=15, process=self.process)

    def kill(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=15)


@pytest.fixture
def private_redis(tmp_path):
    redis = PrivateRedis(tmp_path)
    redis.start()
    try:
        yield redis
    finally:
        redis.kill()


def env_for_tests(**extra: str) -> dict[str, str]:
    """Server environment for the end-to-end tests: no rate limit in the way of bursts
    (except where a test sets one), INFO logs of rim so that the log can be checked,
    and Redis keys of their own: each call is one deployment (its own database), and
    presence must not mix its users with another's that have the same ids."""
    return {
        "RIM_RATE_LIMIT": "0",
        "RIM_LOG_LEVEL": "INFO",
        "RIM_LAYER_PREFIX": f"rimtest{uuid.uuid4().hex[:12]}",
        **extra,
    }


def pid_redis_db(url: str) -> str:
    """`url` on a Redis database number of its own per test run (1..15), so that the
    core layer's group memberships of other runs in database 0 do not reach us."""
    base = url.rsplit("/", 1)[0]
    return f"{base}/{1 + os.getpid() % 15}"


@dataclass
class Cluster:
    """Two server processes on one database and one Redis."""

    a: DaphneServer
    b: DaphneServer
    layer: str


def start_pair(a: DaphneServer, b: DaphneServer) -> None:
    """Migrate the shared database once, then start both processes side by side."""
    a.manage("migrate", "--verbosity", "0")
    a.migrated = b.migrated = True
    asyncio.run(_start_both(a, b))


async def _start_both(a: DaphneServer, b: DaphneServer) -> None:
    await asyncio.gather(asyncio.to_thread(a.start), asyncio.to_thread(b.start))


def cut_database(name: str, *, refuse_new: bool) -> int:
    """Terminate every connection to database `name` (and, with `refuse_new`, refuse
    new ones) as a PostgreSQL restart or failover does. The number terminated."""
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
        if refuse_new:
            admin.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS false')
        rows = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            (name,),
        ).fetchall()
    return len(rows)


def restore_database(name: str) -> None:
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS true')


@contextmanager
def production_server(workdir: Path, **env: str):
    """One server on a fresh PostgreSQL database (dropped afterwards) and Redis (this
    run's own database number unless `env` names a REDIS_URL), started; yields
    (server, database name)."""
    require_services()
    with fresh_postgres_database() as database_url, server_pool(workdir) as pool:
        server = pool.new(
            "daphne",
            env_for_tests(
                DATABASE_URL=database_url, **{"REDIS_URL": pid_redis_db(REDIS_URL), **env}
            ),
        )
        server.start()
        yield server, database_url.rsplit("/", 1)[1]


def require_services() -> None:
    """Fail (never skip) a `services` test at once when PostgreSQL or Redis is down,
    instead of letting it time out on a half-working cluster."""
    problems = unreachable()
    if problems:
        pytest.fail("services test without its services: " + "; ".join(problems))
