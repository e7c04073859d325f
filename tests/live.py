"""Real servers for end-to-end tests: daphne subprocesses on free ports, their own
database, and small REST / WebSocket clients that speak the wire protocol."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from contextlib import contextmanager
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
FAST_HASHER = "django.contrib.auth.hashers.MD5PasswordHasher"
POSTGRES_ADMIN_URL = os.environ.get("RIM_TEST_POSTGRES", "postgres://127.0.0.1:5432/test")
REDIS_URL = os.environ.get("RIM_TEST_REDIS", "redis://127.0.0.1:6379/0")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, timeout: float = 30.0, process: subprocess.Popen | None = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode} before listening")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on port {port} after {timeout} s")


# The servers an end-to-end test can run rim on: rim's own (`manage.py serve`, which
# the README's first command runs) and stock daphne, the deployment Channels documents.
RIM_SERVER = "rim"
STOCK_DAPHNE = "stock-daphne"


class DaphneServer:
    """One server process on a main and a rim-compatible port: `manage.py serve`, or
    with `kind=STOCK_DAPHNE` the `daphne` command on rimsite.asgi:application.

    The database is a SQLite file in `workdir` unless `env` names a DATABASE_URL; it is
    migrated at the first start. stop()/kill() and start() again keep the same ports
    and database, like a restarted server. `env` may name a DJANGO_SETTINGS_MODULE
    (tests that run the server with a faulty part); the test run's own never leaks in.
    """

    def __init__(
        self,
        workdir: Path,
        env: dict[str, str] | None = None,
        name: str = "daphne",
        kind: str = RIM_SERVER,
    ):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.kind = kind
        self.port = free_port()
        self.compat_port = free_port()
        inherited = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
        self.env = {
            **inherited,
            "DATABASE_URL": f"sqlite:///{self.workdir / 'db.sqlite3'}",
            "RIM_PASSWORD_HASHERS": FAST_HASHER,
            # Tests register and log in many users from one address; the tests of the
            # throttles set their own rates.
            **{f"RIM_THROTTLE_{scope}": "0" for scope in ("LOGIN", "REGISTER", "SEARCH")},
            "RIM_HOST": "127.0.0.1",
            "RIM_PORT": str(self.port),
            "RIM_COMPAT_PORT": str(self.compat_port),
            "PYTHONUNBUFFERED": "1",
            **(env or {}),
        }
        if "REDIS_URL" not in (env or {}):
            self.env.pop("REDIS_URL", None)
        self.process: subprocess.Popen | None = None
        self.migrated = False
        self.starts = 0

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    @property
    def compat_ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.compat_port}/"

    @property
    def log_path(self) -> Path:
        return self.workdir / f"{self.name}.log"

    def manage(self, *args: str) -> None:
        subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=self.env,
            check=True,
            capture_output=True,
        )

    def start(self) -> "DaphneServer":
        if not self.migrated:
            self.manage("migrate", "--verbosity", "0")
            self.migrated = True
        self.starts += 1
        log = self.log_path.open("a")
        log.write(f"--- start {self.starts}\n")
        log.flush()
        self.process = subprocess.Popen(
            self.command(),
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_for_port(self.port, process=self.process)
        wait_for_port(self.compat_port, process=self.process)
        return self

    def command(self) -> list[str]:
        if self.kind == RIM_SERVER:
            return [sys.executable, "manage.py", "serve"]
        endpoints = []
        for port in (self.port, self.compat_port):
            endpoints += ["-e", f"tcp:port={port}:interface=127.0.0.1"]
        # As README's "Other ASGI servers" runs it: daphne's access log would print
        # query strings, and GET /api/user/token?token= carries a token.
        quiet = ["--access-log", os.devnull]
        return [sys.executable, "-m", "daphne", *quiet, *endpoints, "rimsite.asgi:application"]

    def stop(self) -> None:
        self._signal(signal.SIGTERM)

    def kill(self) -> None:
        """SIGKILL: no shutdown handler runs, as in a crash."""
        self._signal(signal.SIGKILL)

    def _signal(self, sig: int) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(sig)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=15)

    def log_text(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""

    def __enter__(self) -> "DaphneServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.kill()


@contextmanager
def fresh_postgres_database():
    """A new, empty PostgreSQL database for server subprocesses; dropped afterwards.
    Yields its DATABASE_URL."""
    name = f"rim_e2e_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = POSTGRES_ADMIN_URL.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class ApiError(Exception):
    def __init__(self, status: int, body: dict):
        super().__init__(f"{status}: {body}")
        self.status = status
        self.body = body


def api(base_url: str, route: str, data: dict | None = None, token: str | None = None):
    """Call a REST route; returns the envelope's data, raises ApiError otherwise.
    POST when `data` is given, else GET (`route` may carry a query string)."""
    request = urllib.request.Request(
        f"{base_url}/api/{route}",
        data=None if data is None else json.dumps(data).encode(),
        method="GET" if data is None else "POST",
        headers={"Content-Type": "application/json"},
    )
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=20) as response:
            body = json.load(response)
    except urllib.error.HTTPError as error:
        raise ApiError(error.code, json.load(error)) from None
    return body["data"]


def register(base_url: str, account: str, password: str = "secret-pw") -> tuple[int, str]:
    """Create a user and log in: (uid, token)."""
    uid = api(
        base_url,
        "user/create",
        {
            "name": account.title(),
            "avatar": "",
            "email": "",
            "account": account,
            "password": password,
        },
    )
    token = api(base_url, "user/login", {"account": account, "password": password})
    return uid, token


def frame(event: str, uid: int | None, *, gid=None, content="", msg_id=None, cmid=None) -> str:
    """A client MsgEvent as rim's client sends it."""
    return json.dumps(
        {
            "event": event,
            "body": {
                "kind": "Text",
                "uid": uid,
                "gid": gid,
                "content": content,
                "clientMsgId": cmid or uuid.uuid4().hex,
                "msgId": msg_id,
            },
        }
    )
