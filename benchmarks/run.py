#!/usr/bin/env python3
"""`make bench`: the scenarios of issues 6 and 12 on both stacks in one sitting,
written to benchmarks/RESULTS.md.

Each run starts a fresh server the way `make run` does (`manage.py migrate`, then
`manage.py serve`) on a fresh database, with benchmark settings: RIM_DEBUG=0 with a
generated secret key, no rate limit, no per-address connection cap, a fast password
hasher for the (untimed) setup, log level WARNING and free loopback ports. One server
process, pinned to core 0; the load generator (benchmarks/loadgen.py) on core 1.

Stacks:
  embedded        a SQLite file and the in-memory channel layer (the defaults)
  production      a PostgreSQL database created for the run and dropped after it, and
                  Redis (REDIS_URL) with a fresh RIM_LAYER_PREFIX; everything else as
                  the app's settings choose for it (workers, channel layer)
  production+1ms  production with benchmarks/delayproxy.py in front of PostgreSQL and
                  Redis, adding 1 ms to every round trip (0.5 ms each way)

By default: a, b, c and d on embedded, a, b and c on production, b on production+1ms,
`--runs` times each, runs interleaved (run 1 of every cell, then run 2, ...) so that a
machine whose speed drifts affects every stack alike. A target that is not met gets
one extra run under py-spy, and its profile goes into the report.

    .venv/bin/python benchmarks/run.py                       # everything (make bench)
    .venv/bin/python benchmarks/run.py --scenarios b --stacks embedded,production
    .venv/bin/python benchmarks/run.py --quick --out /tmp/q.md  # small sizes: smoke check
    .venv/bin/python benchmarks/run.py --tree /work/wt-base --scenarios a,b,c \
        --stacks embedded --out /tmp/before.md               # servers from another checkout

RIM_* variables in run.py's own environment reach the servers (except RIM_HOST,
RIM_PORT, RIM_COMPAT_PORT, RIM_LAYER_PREFIX and RIM_SECRET_KEY, which run.py sets), so
settings can be varied without code changes: `RIM_DB_WORKERS=8 run.py ...`.

Every process it starts runs in its own session and is stopped at the end, also on
Ctrl-C, SIGTERM or an error; every PostgreSQL database it creates is dropped and its
Redis keys deleted. Loopback only. Per-run JSON, logs and profiles go to
benchmarks/out/ (not committed).
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import dataclasses
import datetime
import json
import os
import platform
import re
import resource
import secrets
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "benchmarks"
PYTHON = sys.executable
LOADGEN = BENCH / "loadgen.py"
DELAYPROXY = BENCH / "delayproxy.py"
RESULTS = BENCH / "RESULTS.md"
FAST_HASHER = "django.contrib.auth.hashers.MD5PasswordHasher"
PG_ADMIN_URL = os.environ.get("RIM_BENCH_POSTGRES", "postgres://127.0.0.1:5432/test")
REDIS_URL = os.environ.get("RIM_BENCH_REDIS", "redis://127.0.0.1:6379/0")
ADDED_RTT_MS = 1.0
SOAK_BEGIN, SOAK_END = "<!-- soak:begin -->", "<!-- soak:end -->"
# run.py rewrites only what is between these markers; everything else in RESULTS.md
# (history, hand-written notes, the soak) stays as it is.
BENCH_BEGIN, BENCH_END = "<!-- bench:begin -->", "<!-- bench:end -->"

SCENARIOS = ("a", "b", "c", "d")
STACKS = ("embedded", "production", "production+1ms")
# (scenario, stack) cells run by default, in report order.
DEFAULT_CELLS = (
    ("a", "embedded"),
    ("a", "production"),
    ("b", "embedded"),
    ("b", "production"),
    ("b", "production+1ms"),
    ("c", "embedded"),
    ("c", "production"),
    ("d", "embedded"),
)

# loadgen options per scenario. The presets (--scenario) are issue 6's workloads.
FULL = {
    # --drain 300: deliveries still queued after the last ack count as lost only when
    # they have not arrived 300 s later (loadgen's default, 30 s, can count late as lost).
    "a": ["--scenario", "a", "--drain", "300"],
    "b": ["--scenario", "b", "--drain", "300"],
    "c": ["--scenario", "c", "--drain", "300"],
    "d": ["--scenario", "d", "--timeout", "900"],
}
QUICK = {
    "a": ["--scenario", "a", "--users", "4", "--msgs-per-user", "20"],
    "b": ["--scenario", "b", "--users", "20", "--msgs-per-user", "10"],
    "c": ["--scenario", "c", "--users", "20", "--group-size", "10", "--msgs-per-user", "5"],
    "d": ["--scenario", "d", "--idle", "300", "--idle-users", "20", "--idle-seconds", "5"],
}
# Wall-clock bound of one loadgen process (setup, settle, load, drain), seconds.
RUN_LIMIT = {"a": 600, "b": 900, "c": 900, "d": 1500}

SCENARIO_TEXT = {
    "a": "a, one-to-one: 20 users, groups of 2, 200 msgs/user, window 1",
    "b": "b, groups: 100 users, groups of 10, 100 msgs/user, window 8",
    "c": "c, big groups: 200 users, groups of 50, 20 msgs/user, window 4",
    "d": "d, idle: 10,000 logged-in connections (100 users) held 30 s",
}
STACK_TEXT = {
    "embedded": "SQLite file + in-memory channel layer",
    "production": "PostgreSQL + Redis",
    "production+1ms": f"PostgreSQL + Redis, +{ADDED_RTT_MS:g} ms round trip to each",
}

# Leaf frames where a thread waits rather than works (blocked in C: the selector, a
# condition, a pool worker's queue get): left out of the profile tables. A coroutine
# frame as the leaf is work, whatever its name.
IDLE_LEAF = re.compile(
    r"^(\w*Selector\.select|Condition\.wait|Event\.wait|Thread\._wait_for_tstate_lock|"
    r"Thread\.join|_worker) \((.*/)?(selectors|threading|concurrent/futures/thread)\.py\)$"
)
ENTRY_FRAMES = re.compile(
    r"^(<module>|execute_from_command_line|ManagementUtility\.execute|BaseCommand\.\w+|"
    r"Command\.handle|CommandLineInterface\.run|RimServer\.run|Server\.run|"
    r"AsyncioSelectorReactor\.run|BaseEventLoop\.run_forever|Thread\._bootstrap\w*|"
    r"Thread\.run) "
)

STARTED: list[subprocess.Popen] = []


WORKER_THREADS = "worker threads (database workers, HTTP requests)"


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] run: {msg}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------ processes


def on_signal(signum, _frame):
    raise SystemExit(128 + signum)


def raise_nofile() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = max(soft, 65536)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def spawn(cmd: list[str], env: dict, logfile: Path, cwd: Path = ROOT) -> subprocess.Popen:
    """Start `cmd` in its own session (so Ctrl-C on the terminal reaches only us and
    we decide how it ends), output to `logfile`, and remember it for cleanup."""
    out = logfile.open("ab")
    try:
        proc = subprocess.Popen(
            cmd,
            cwd=cwd,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=raise_nofile,
        )
    finally:
        out.close()
    STARTED.append(proc)
    return proc


def stop(proc: subprocess.Popen, grace: float = 10.0) -> None:
    """SIGTERM to the process group we created, SIGKILL after `grace` seconds."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=grace)
    # Anything left in its group (it was started in a session of its own).
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=10)
    if proc in STARTED:
        STARTED.remove(proc)


def stop_all() -> None:
    for proc in list(reversed(STARTED)):
        stop(proc, grace=5.0)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[-1]} exited with {proc.returncode} before listening")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on port {port} after {timeout} s")


def pinning() -> tuple[list[str], list[str]]:
    """taskset prefixes for (server, loadgen): core 0 and core 1, if there are two."""
    cores = os.sched_getaffinity(0)
    if len(cores) >= 2 and {0, 1} <= cores and shutil.which("taskset"):
        return ["taskset", "-c", "0"], ["taskset", "-c", "1"]
    return [], []


def proc_sample(pid: int) -> dict | None:
    """CPU seconds and RSS of one process from /proc (None once it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        with open(f"/proc/{pid}/status") as f:
            rss = next(int(line.split()[1]) for line in f if line.startswith("VmRSS"))
    except (OSError, StopIteration):
        return None
    cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return {"t": time.monotonic(), "rss_kb": rss, "cpu_s": cpu}


def sh(cmd: list[str], cwd: Path = ROOT) -> str:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, cwd=cwd).stdout.strip()
    except OSError:
        return "?"


# ------------------------------------------------------------------ the server's tree


@dataclasses.dataclass(frozen=True)
class Tree:
    """The checkout the servers run from: this one, or `--tree` (another worktree)."""

    root: Path
    python: str

    @classmethod
    def at(cls, path: Path | None) -> Tree:
        root = (path or ROOT).resolve()
        if not (root / "manage.py").is_file():
            raise SystemExit(f"run.py: {root} has no manage.py: not a checkout of rim")
        venv = root / ".venv" / "bin" / "python"
        return cls(root, str(venv) if venv.exists() else PYTHON)

    @property
    def is_this_checkout(self) -> bool:
        return self.root == ROOT

    def revision(self) -> dict:
        return {
            "commit": sh(["git", "rev-parse", "--short", "HEAD"], self.root),
            "subject": sh(["git", "log", "-1", "--format=%s"], self.root),
            "dirty": [
                line.split(maxsplit=1)[-1]
                for line in sh(
                    ["git", "status", "--porcelain", "--untracked-files=no"], self.root
                ).splitlines()
            ],
        }


# ------------------------------------------------------------------ server settings

# What run.py sets on every server; RIM_* from run.py's own environment override these.
BENCH_SETTINGS = {
    "RIM_DEBUG": "0",
    # Issue 6's workloads send far past the default 50 events/s per connection.
    "RIM_RATE_LIMIT": "0",
    # Every benchmark client comes from 127.0.0.1, standing for many addresses.
    "RIM_MAX_CONNECTIONS_PER_IP": "0",
    # The setup registers and logs in every user from that one address too.
    "RIM_THROTTLE_LOGIN": "0",
    "RIM_THROTTLE_REGISTER": "0",
    "RIM_PASSWORD_HASHERS": FAST_HASHER,
    "RIM_LOG_LEVEL": "WARNING",
}
# Per run, never from the environment.
RUN_OWNED = ("RIM_HOST", "RIM_PORT", "RIM_COMPAT_PORT", "RIM_LAYER_PREFIX", "RIM_SECRET_KEY")


def passed_through() -> dict:
    """RIM_* variables of run.py's environment that reach the servers."""
    return {
        k: v
        for k, v in sorted(os.environ.items())
        if k.startswith("RIM_") and not k.startswith("RIM_BENCH_") and k not in RUN_OWNED
    }


def server_env(database_url: str, port: int, redis_url=None, prefix=None, settings=None) -> dict:
    """The environment of one server. `settings` replaces BENCH_SETTINGS entries (None
    drops one, so that the app's default applies); RIM_* from our environment win."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("RIM_")
        and k not in ("DJANGO_SETTINGS_MODULE", "DATABASE_URL", "REDIS_URL")
    }
    bench = {**BENCH_SETTINGS, **(settings or {})}
    env.update({k: v for k, v in bench.items() if v is not None})
    env.update(passed_through())
    env.update(
        {
            "DATABASE_URL": database_url,
            "RIM_SECRET_KEY": secrets.token_urlsafe(48),
            "RIM_HOST": "127.0.0.1",
            "RIM_PORT": str(port),
            "RIM_COMPAT_PORT": "0",
            "PYTHONUNBUFFERED": "1",
        }
    )
    if redis_url:
        env["REDIS_URL"] = redis_url
        env["RIM_LAYER_PREFIX"] = prefix
    return env


def show_cmd(env: dict, cmd: list[str], cwd: Path = ROOT) -> str:
    """`cmd` as a shell line with the settings that matter; paths relative to here."""
    parts = [f"{k}={env[k]}" for k in ("DATABASE_URL", "REDIS_URL") if k in env]
    for k in sorted(k for k in env if k.startswith("RIM_")):
        if k == "RIM_HOST" or (k == "RIM_PORT" and env[k] == "0"):
            continue
        parts.append(f"{k}={'<generated>' if k == 'RIM_SECRET_KEY' else env[k]}")
    rel = [os.path.relpath(c, cwd) if c.startswith(str(cwd) + "/") else c for c in cmd]
    line = " ".join([*parts, shlex.join(rel)])
    if cwd != ROOT:
        line = f"(cd {cwd} && {line})"
    return line.replace(str(BENCH / "out") + "/", "benchmarks/out/").replace(str(ROOT) + "/", "")


# ------------------------------------------------------------------ stacks


@dataclasses.dataclass
class StackRun:
    """The services of one run: what the servers are told, and what it took."""

    name: str
    database_url: str  # for the server (through the proxy with +1ms)
    migrate_url: str  # for `migrate` (never through the proxy)
    redis_url: str | None = None
    migrate_redis_url: str | None = None
    prefix: str | None = None
    proxied: Proxied | None = None
    commands: list[str] = dataclasses.field(default_factory=list)


def loopback_url(url: str) -> bool:
    host = re.sub(r"^\w+://(?:[^@/]*@)?", "", url).split("/")[0].rsplit(":", 1)[0]
    return host in ("127.0.0.1", "localhost", "[::1]")


def url_port(url: str, default: int) -> int:
    netloc = re.sub(r"^\w+://(?:[^@/]*@)?", "", url).split("/")[0]
    _, sep, port = netloc.rpartition(":")
    return int(port) if sep and port.isdigit() else default


def with_port(url: str, port: int) -> str:
    """`url` with its host:port replaced by 127.0.0.1:port."""
    return re.sub(r"^(\w+://(?:[^@/]*@)?)[^/]*", rf"\g<1>127.0.0.1:{port}", url)


@contextlib.contextmanager
def fresh_postgres():
    """A new PostgreSQL database for the servers, dropped afterwards (also on Ctrl-C)."""
    import psycopg

    name = f"rim_bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=10) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    log(f"created PostgreSQL database {name}")
    try:
        yield f"{PG_ADMIN_URL.rsplit('/', 1)[0]}/{name}"
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=10) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        log(f"dropped PostgreSQL database {name}")


@contextlib.contextmanager
def fresh_layer_prefix(redis_url: str):
    """A RIM_LAYER_PREFIX of its own; its Redis keys are deleted afterwards."""
    import redis

    prefix = f"rimbench{uuid.uuid4().hex[:10]}"
    try:
        yield prefix
    finally:
        client = redis.Redis.from_url(redis_url, socket_timeout=10)
        try:
            keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
            for i in range(0, len(keys), 500):
                client.delete(*keys[i : i + 500])
        finally:
            client.close()


def measure_rtt(database_url: str, redis_url: str, n: int = 200) -> dict:
    """Median round trip, ms: `SELECT 1` on PostgreSQL and PING on Redis."""
    import psycopg
    import redis

    out = {}
    with psycopg.connect(database_url, connect_timeout=10) as conn:
        lat = []
        for _ in range(n):
            t = time.perf_counter()
            conn.execute("SELECT 1").fetchone()
            lat.append(time.perf_counter() - t)
        out["postgres_ms"] = round(1000 * statistics.median(lat), 3)
    client = redis.Redis.from_url(redis_url, socket_timeout=10)
    try:
        lat = []
        for _ in range(n):
            t = time.perf_counter()
            client.ping()
            lat.append(time.perf_counter() - t)
        out["redis_ms"] = round(1000 * statistics.median(lat), 3)
    finally:
        client.close()
    return out


@dataclasses.dataclass
class Proxied:
    """A running delayproxy in front of PostgreSQL and Redis."""

    proc: subprocess.Popen
    log: Path
    database_url: str
    redis_url: str
    command: str
    calibration: dict = dataclasses.field(default_factory=dict)

    def stats(self) -> dict | None:
        """The counters the proxy printed when it was stopped."""
        if not self.log.exists():
            return None
        for line in reversed(self.log.read_text(errors="replace").splitlines()):
            if line.startswith("delayproxy: {"):
                return json.loads(line.split(": ", 1)[1])
        return None


@contextlib.contextmanager
def delay_proxy(logfile: Path, db_url: str, redis_url: str, rtt_ms: float, pin=()):
    """delayproxy (`--rtt rtt_ms`, at real-time priority so that a busy machine delays
    its releases less) in front of both services; measures the round trips with and
    without it."""
    pg_port, redis_port = free_port(), free_port()
    cmd = [
        *pin,
        PYTHON,
        str(DELAYPROXY),
        "--rtt",
        f"{rtt_ms:g}",
        "--realtime",
        "--listen",
        f"127.0.0.1:{pg_port}",
        "--target",
        f"127.0.0.1:{url_port(db_url, 5432)}",
        "--listen",
        f"127.0.0.1:{redis_port}",
        "--target",
        f"127.0.0.1:{url_port(redis_url, 6379)}",
    ]
    proc = spawn(cmd, dict(os.environ), logfile)
    try:
        wait_for_port(pg_port, proc, 15)
        wait_for_port(redis_port, proc, 15)
        p = Proxied(
            proc,
            logfile,
            with_port(db_url, pg_port),
            with_port(redis_url, redis_port),
            show_cmd({}, cmd) + " &",
        )
        direct = measure_rtt(db_url, redis_url)
        proxied = measure_rtt(p.database_url, p.redis_url)
        p.calibration = {
            "direct": direct,
            "proxied": proxied,
            "added_postgres_ms": round(proxied["postgres_ms"] - direct["postgres_ms"], 3),
            "added_redis_ms": round(proxied["redis_ms"] - direct["redis_ms"], 3),
        }
        log(f"{logfile.parent.name}: delayproxy --rtt {rtt_ms:g}: {json.dumps(p.calibration)}")
        yield p
    finally:
        stop(proc)


def proxy_rtt_for(target_ms: float, workdir: Path, redis_url: str, pin=()) -> tuple[float, dict]:
    """The --rtt that adds `target_ms` in all: delayproxy's own two hops cost a little
    per round trip (measured here at --rtt 0, against the admin database) and are
    subtracted."""
    with delay_proxy(workdir / "delayproxy-rtt0.log", PG_ADMIN_URL, redis_url, 0, pin) as p:
        cal = p.calibration
    own = (cal["added_postgres_ms"] + cal["added_redis_ms"]) / 2
    return round(max(0.0, target_ms - max(own, 0.0)), 3), cal


@contextlib.contextmanager
def open_stack(stack: str, rundir: Path, redis_url: str = REDIS_URL, proxy_rtt=None, pin_proxy=()):
    """The services of `stack` for one run; everything created is removed afterwards.
    production+1ms puts delayproxy (`--rtt proxy_rtt`, default ADDED_RTT_MS, on
    `pin_proxy`: the load generator's core) in front of both services."""
    if stack == "embedded":
        url = f"sqlite:///{rundir / 'db.sqlite3'}"
        yield StackRun(stack, url, url)
        return
    with contextlib.ExitStack() as stack_:
        db_url = stack_.enter_context(fresh_postgres())
        prefix = stack_.enter_context(fresh_layer_prefix(redis_url))
        run = StackRun(stack, db_url, db_url, redis_url, redis_url, prefix)
        name = db_url.rsplit("/", 1)[1]
        run.commands.append(f"psql {PG_ADMIN_URL} -c 'CREATE DATABASE \"{name}\"'  # dropped after")
        if stack == "production+1ms":
            rtt = ADDED_RTT_MS if proxy_rtt is None else proxy_rtt
            run.proxied = stack_.enter_context(
                delay_proxy(rundir / "delayproxy.log", db_url, redis_url, rtt, pin_proxy)
            )
            run.commands.append(run.proxied.command)
            run.database_url = run.proxied.database_url
            run.redis_url = run.proxied.redis_url
        yield run


class Server:
    """One `manage.py serve` process on a fresh database, started like `make run`."""

    def __init__(self, workdir: Path, tree: Tree, services: StackRun, pin, settings=None):
        self.commands: list[str] = []
        migrate_env = server_env(
            services.migrate_url, 0, services.migrate_redis_url, services.prefix, settings
        )
        cmd = [tree.python, "manage.py", "migrate", "--verbosity", "0"]
        self.commands.append(show_cmd(migrate_env, cmd, tree.root))
        r = subprocess.run(
            cmd, cwd=tree.root, env=migrate_env, capture_output=True, text=True, timeout=300
        )
        if r.returncode != 0:
            raise RuntimeError(f"migrate failed: {r.stderr[-2000:]}")
        self.port = free_port()
        self.env = server_env(
            services.database_url, self.port, services.redis_url, services.prefix, settings
        )
        cmd = [*pin, tree.python, "manage.py", "serve"]
        self.commands.append(show_cmd(self.env, cmd, tree.root) + " &")
        self.proc = spawn(cmd, self.env, workdir / "server.log", cwd=tree.root)
        wait_for_port(self.port, self.proc)

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def loadgen_args(self, json_path: Path, extra: list[str]) -> list[str]:
        """loadgen.py's options for a run against this server."""
        return ["--url", self.url, "--server-pid", str(self.pid), "--json", str(json_path), *extra]

    def close(self) -> None:
        stop(self.proc)


# ------------------------------------------------------------------ one run


def run_loadgen(
    cmd, workdir: Path, name: str, limit: float, on_start=None, trigger: bytes = b"load: start"
) -> int:
    """Run a loadgen process to its end (bounded by `limit` s); `on_start` is called
    once it logs `trigger`."""
    logfile = workdir / "loadgen.log"
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env["PYTHONUNBUFFERED"] = "1"
    proc = spawn(cmd, env, logfile)
    deadline = time.monotonic() + limit
    started = False
    try:
        while proc.poll() is None:
            if time.monotonic() > deadline:
                log(f"{name}: loadgen still running after {limit} s, killed")
                break
            if on_start and not started and trigger in logfile.read_bytes():
                started = True
                on_start()
            time.sleep(0.5)
    finally:
        stop(proc)
    return proc.returncode


def one_run(cell: tuple[str, str], n: int, opts, workdir: Path, profile: bool = False) -> dict:
    scenario, stack = cell
    pin_srv, pin_lg = pinning() if not opts.no_pin else ([], [])
    name = f"{scenario}-{stack}-{n}" if not profile else f"{scenario}-{stack}-profile"
    rundir = workdir / name
    rundir.mkdir(parents=True, exist_ok=True)
    extra = list((QUICK if opts.quick else FULL)[scenario])
    if opts.quick:
        extra += ["--settle", "10", "--drain", "10"]
    json_path = rundir / "result.json"
    with contextlib.ExitStack() as stack_:
        services = stack_.enter_context(
            open_stack(stack, rundir, opts.redis_url, opts.proxy_rtt, pin_lg)
        )
        proxy = services.proxied
        server = Server(rundir, opts.tree, services, pin_srv)
        stack_.callback(server.close)
        cmd = [*pin_lg, PYTHON, str(LOADGEN), *server.loadgen_args(json_path, extra)]
        spy = {}

        def start_profile():
            out = rundir / "profile.raw"
            spy_cmd = [
                str(Path(PYTHON).parent / "py-spy"),
                "record",
                "-p",
                str(server.pid),
                "-r",
                "200",
                "-f",
                "raw",
                "-o",
                str(out),
                "-d",
                str(opts.profile_seconds),
            ]
            spy["cmd"] = shlex.join(spy_cmd)
            spy["out"] = out
            spy["proc"] = spawn(spy_cmd, os.environ.copy(), rundir / "py-spy.log")
            log(f"{name}: py-spy attached to {server.pid} for {opts.profile_seconds} s")

        log(f"{name}: {shlex.join(cmd)}")
        t0 = time.monotonic()
        proxy0 = proc_sample(proxy.proc.pid) if proxy else None
        rc = run_loadgen(
            cmd,
            rundir,
            name,
            RUN_LIMIT[scenario],
            on_start=start_profile if profile else None,
            # Idle mode has no load phase: profile the connection storm.
            trigger=b"connect: " if scenario == "d" else b"load: start",
        )
        wall = time.monotonic() - t0
        proxy1 = proc_sample(proxy.proc.pid) if proxy else None
        if "proc" in spy:
            with contextlib.suppress(subprocess.TimeoutExpired):
                spy["proc"].wait(timeout=opts.profile_seconds + 30)
            stop(spy["proc"])
        alive = server.proc.poll() is None
        server.close()
        if proxy is not None:
            stop(proxy.proc)
        result = json.loads(json_path.read_text()) if json_path.exists() else None
        return {
            "scenario": scenario,
            "stack": stack,
            "run": n,
            "rc": rc,
            "wall_s": round(wall, 1),
            "server_alive_at_end": alive,
            "commands": [*services.commands, *server.commands, show_cmd({}, cmd)],
            "result": result,
            "calibration": proxy.calibration if proxy else None,
            "proxy": proxy.stats() if proxy else None,
            # Over the whole loadgen process (setup included): the proxy's own CPU.
            "proxy_cpu_pct": (
                round(100 * (proxy1["cpu_s"] - proxy0["cpu_s"]) / wall, 1)
                if proxy0 and proxy1 and wall
                else None
            ),
            "profile": spy.get("out"),
            "profile_cmd": spy.get("cmd"),
            "dir": str(rundir),
        }


# ------------------------------------------------------------------ figures


def figures(run: dict) -> dict | None:
    r = run["result"]
    if r is None:
        return None
    if r["mode"] == "idle":
        s = r.get("server") or {}
        return {
            "connected": r["connected"],
            "still_open": r["still_open_at_end"],
            "failures": sum((r.get("failures") or {}).values()),
            "connects_per_s": r["connects_per_s"],
            "login_p99": r["login_latency_ms"]["p99"],
            "rss_per_conn_kib": s.get("rss_per_idle_connection_kb"),
            "rss_reliable": s.get("rss_per_idle_connection_reliable"),
            "rss_base_mib": (s.get("rss_baseline_kb") or 0) / 1024,
            "rss_end_mib": (s.get("rss_end_of_hold_kb") or 0) / 1024,
            "other_pct": r["machine"]["other_processes_pct_of_one_core"],
        }
    d = r["deliveries"]
    server = r.get("server") or {}
    return {
        "msgs_s": r["acked_msgs_per_s"],
        "acked": r["messages"]["acked_ok"],
        "planned": r["messages"]["planned"],
        "ack_p50": r["ack_latency_ms"]["p50"],
        "ack_p99": r["ack_latency_ms"]["p99"],
        "dlv_p50": r["delivery_latency_ms"]["p50"],
        "dlv_p99": r["delivery_latency_ms"]["p99"],
        "deliv_s": r["deliveries_per_s"],
        "expected": d["expected"],
        "lost": d["lost"],
        "dup": d["duplicated"],
        "ooo": d["out_of_order"],
        "errors": sum(r["messages"]["errors"].values()),
        "closed": r["connections_closed_during_run"],
        "srv_cpu": server.get("cpu_pct_of_one_core"),
        "lg_cpu": r["loadgen"]["cpu_pct_of_one_core"],
        "other_pct": r["machine"]["other_processes_pct_of_one_core"],
        "cores": "/".join(f"{v:.0f}" for v in r["machine"]["core_busy_pct"].values()),
        "drain_s": d["drain_wait_s"],
        "timed_out": r["messages"]["timed_out"],
        "proxy_cpu": run.get("proxy_cpu_pct"),
    }


def med(values: list) -> tuple | None:
    vals = [v for v in values if v is not None]
    if not vals:
        return None
    return statistics.median(vals), min(vals), max(vals)


def fmt(m: tuple | None, nd: int = 0, unit: str = "") -> str:
    if m is None:
        return "-"

    def f(v):
        return f"{v:,.{nd}f}"

    if m[1] == m[2]:
        return f"{f(m[0])}{unit}"
    return f"{f(m[0])}{unit} ({f(m[1])}-{f(m[2])})"


class Sitting:
    """The figures of every run by cell, and the medians the targets are judged on."""

    def __init__(self, runs: dict[tuple[str, str], list[dict]]) -> None:
        self.runs = runs
        self.figs = {
            cell: [f for f in (figures(r) for r in rs) if f is not None]
            for cell, rs in runs.items()
        }

    def median(self, cell: tuple[str, str], key: str) -> float | None:
        m = med([f.get(key) for f in self.figs.get(cell, [])])
        return None if m is None else m[0]

    def ratio(self, cell: tuple[str, str]) -> float | None:
        """The cell's median acked msgs/s over embedded's for the same scenario."""
        base = self.median((cell[0], "embedded"), "msgs_s")
        mine = self.median(cell, "msgs_s")
        return mine / base if base and mine is not None else None


@dataclasses.dataclass(frozen=True)
class Target:
    issue: int
    cell: tuple[str, str]  # the cell it judges, profiled when it is missed
    text: str
    judge: Callable[[Sitting], tuple[bool | None, str]]  # -> (met, the figure judged)


def rate_target(cell, issue, min_rate, max_p99=None, min_deliveries=None) -> Target:
    text = f"{cell[0]} on {cell[1]}: ≥ {min_rate:,} acked msgs/s"
    if max_p99 is not None:
        text += f" and ack p99 ≤ {max_p99} ms"
    if min_deliveries is not None:
        text += f" and ≥ {min_deliveries:,} deliveries/s"

    def judge(s: Sitting) -> tuple[bool, str]:
        rate, p99 = s.median(cell, "msgs_s"), s.median(cell, "ack_p99")
        dps = s.median(cell, "deliv_s")
        if rate is None:
            return False, "no message acked"
        ok = rate >= min_rate
        shown = f"{rate:,.0f} msgs/s"
        if max_p99 is not None:
            ok = ok and p99 is not None and p99 <= max_p99
            shown += f", ack p99 {p99:,.1f} ms"
        if min_deliveries is not None:
            ok = ok and dps is not None and dps >= min_deliveries
            shown += f", {dps:,.0f} deliveries/s"
        return ok, shown

    return Target(issue, cell, text, judge)


def ratio_target(cell, issue, min_ratio) -> Target:
    text = f"{cell[0]} on {cell[1]}: ≥ {min_ratio:.0%} of embedded {cell[0]}'s msgs/s"

    def judge(s: Sitting) -> tuple[bool | None, str]:
        r = s.ratio(cell)
        if r is None:
            return None, f"embedded {cell[0]} not measured in this sitting"
        return r >= min_ratio, f"{r:.0%}"

    return Target(issue, cell, text, judge)


def idle_target(s: Sitting) -> tuple[bool, str]:
    cell = ("d", "embedded")
    held, rss = s.median(cell, "still_open"), s.median(cell, "rss_per_conn_kib")
    ok = held >= 10_000 and rss is not None and rss <= 32
    return ok, f"{held:,.0f} held, {rss if rss is not None else '-'} KiB each"


TARGETS = (
    rate_target(("a", "embedded"), 12, 5_000),
    rate_target(("a", "production"), 12, 4_500, max_p99=10),
    ratio_target(("b", "production"), 12, 0.75),
    ratio_target(("c", "production"), 12, 0.75),
    ratio_target(("b", "production+1ms"), 12, 0.50),
    rate_target(("a", "embedded"), 6, 2_000, max_p99=10),
    rate_target(("b", "embedded"), 6, 1_000),
    rate_target(("c", "embedded"), 6, 600, min_deliveries=29_000),
    Target(
        6,
        ("d", "embedded"),
        "d on embedded: ≥ 10,000 logged-in idle connections at ≤ 32 KiB RSS each",
        idle_target,
    ),
)


def verdicts(s: Sitting, quick: bool) -> list[tuple[Target, bool | None, str]]:
    """(target, met, the figure) for every target whose cell ran; met is None when not
    judged (--quick sizes, or a ratio without embedded in this sitting)."""
    out = []
    for t in TARGETS:
        if t.cell not in s.runs:
            continue
        if not s.figs.get(t.cell):
            out.append((t, False, "no successful run"))
            continue
        ok, shown = t.judge(s)
        out.append((t, None if quick else ok, shown))
    return out


def mark(ok: bool | None) -> str:
    return {True: "**met**", False: "**not met**", None: "-"}[ok]


# ------------------------------------------------------------------ profile


def fold_profile(raw: Path, tree_root: Path, top: int = 20) -> dict:
    """Self and cumulative time per frame from py-spy's raw (collapsed) output.
    Stacks whose leaf is a wait (select, Condition.wait, a pool worker's queue get)
    are idle, not work, and are left out; line numbers are folded into functions."""
    self_t: collections.Counter = collections.Counter()
    cum_t: collections.Counter = collections.Counter()
    threads: collections.Counter = collections.Counter()
    total = idle = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = [re.sub(r":\d+\)$", ")", f.strip()) for f in stack.split(";") if f.strip()]
        if not frames:
            continue
        leaf = frames[-1]
        if IDLE_LEAF.match(leaf):
            idle += n
            continue
        total += n
        worker = any(f.startswith("_worker (") and "thread.py" in f for f in frames)
        threads[WORKER_THREADS if worker else "main thread"] += n
        self_t[leaf] += n
        for f in set(frames):
            cum_t[f] += n

    def short(f: str) -> str:
        m = re.match(r"(.*) \((.*)\)$", f)
        if not m:
            return f
        fn, path = m.groups()
        for marker in ("site-packages/", "lib/python3", f"{tree_root}/"):
            if marker in path:
                path = path.split(marker, 1)[1]
                if marker == "lib/python3":
                    path = path.split("/", 1)[-1]
                break
        return f"`{fn}` ({path})"

    def rows(counter):
        return [(round(100 * n / total, 1), short(f), f) for f, n in counter.most_common(top)]

    cum_rows = [
        (round(100 * n / total, 1), short(f), f)
        for f, n in cum_t.most_common()
        if not ENTRY_FRAMES.match(f) and not f.startswith("_worker (")
    ][:top]
    return {
        "samples": total,
        "idle_samples": idle,
        "threads": {k: round(100 * v / total, 1) for k, v in threads.items()} if total else {},
        "self": rows(self_t),
        "cum": cum_rows,
        "cum_of": {f: round(100 * n / total, 1) for f, n in cum_t.items()} if total else {},
        "self_of": {f: round(100 * n / total, 1) for f, n in self_t.items()} if total else {},
    }


# ------------------------------------------------------------------ report


def machine(tree: Tree) -> dict:
    cpu = "?"
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = "?"
    with contextlib.suppress(OSError), open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    versions = sh(
        [
            tree.python,
            "-c",
            "import django, daphne, channels, sqlite3, sys; print(sys.version.split()[0], "
            "django.__version__, daphne.__version__, channels.__version__, "
            "sqlite3.sqlite_version)",
        ]
    ).split()
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "mem": mem,
        "kernel": platform.release(),
        "versions": versions,
        "server": tree.revision(),
        "harness": Tree.at(ROOT).revision(),
    }


def revision_text(rev: dict) -> str:
    return f"`{rev['commit']}` ({rev['subject']})" + (
        f" + uncommitted changes to {', '.join(rev['dirty'])}" if rev["dirty"] else ""
    )


def all_clean(runs: dict) -> bool:
    """Every run has a result, and none lost or duplicated a delivery."""
    figs = [figures(r) for rs in runs.values() for r in rs]
    return all(f is not None and f.get("lost", 0) == 0 and f.get("dup", 0) == 0 for f in figs)


def each_run(runs: dict, idle: bool):
    """(label, figures or None, run) of every run of the idle cells (d), or of the
    others."""
    for (sc, stack), rs in runs.items():
        if (sc == "d") == idle:
            for r in rs:
                yield f"{sc} {stack} #{r['run']}", figures(r), r


def report(opts, runs: dict, profiles: dict, meta: dict) -> tuple[str, list]:
    """The Markdown between BENCH_BEGIN and BENCH_END, and the verdicts."""
    s = Sitting(runs)
    judged = verdicts(s, opts.quick)
    lines = [BENCH_BEGIN]
    w = lines.append
    m = meta["machine"]
    title = "## Both stacks in one sitting (issues 6 and 12)"
    if opts.quick:
        title += " — QUICK SMOKE CHECK, small sizes: not the figures of the issues"
    w(title)
    w("")
    w(
        "Written by `benchmarks/run.py` (`make bench`). Each run starts a fresh server on a "
        f"fresh database; figures are the **median of {opts.runs} run(s)** with (min-max), "
        "all measured in this one sitting, runs interleaved across the cells."
    )
    w("")
    pin_srv, _ = pinning() if not opts.no_pin else ([], [])
    v = m["versions"] + ["?"] * 5
    w(f"* date: {meta['start']} - {meta['end']} (UTC)")
    w(f"* server code: git commit {revision_text(m['server'])}, from `{opts.tree.root}`")
    if m["harness"]["commit"] != m["server"]["commit"] or not opts.tree.is_this_checkout:
        w(f"* harness (run.py, loadgen.py): git commit {revision_text(m['harness'])}")
    w(f"* machine: {m['nproc']} x {m['cpu']}, {m['mem']} memory, Linux {m['kernel']}")
    w(f"* software: Python {v[0]}, Django {v[1]}, daphne {v[2]}, channels {v[3]}, SQLite {v[4]}")
    w(
        "* pinning: "
        + (
            "the server on core 0 (`taskset -c 0`), the load generator on core 1 "
            "(`taskset -c 1`), delayproxy on core 1 too; PostgreSQL and Redis are the "
            "machine's services, not pinned"
            if pin_srv
            else "none (fewer than 2 cores, or --no-pin)"
        )
    )
    w(
        f"* load average (1 min) at the start: {meta['load_start']}; other processes' CPU "
        "during each run is in the per-run table (`other %`)"
    )
    w(
        "* stacks: "
        + "; ".join(f"**{k}**: {STACK_TEXT[k]}" for k in STACKS if any(c[1] == k for c in runs))
        + ". Production: a PostgreSQL database created for each run and dropped after it, "
        f"`REDIS_URL={opts.redis_url}` with a fresh `RIM_LAYER_PREFIX` per run, and "
        "otherwise the app's own settings for that stack"
    )
    cal = [r["calibration"] for rs in runs.values() for r in rs if r.get("calibration")]
    if cal:
        own = meta.get("proxy_rtt0") or {}
        w(
            f"* +{ADDED_RTT_MS:g} ms: delayproxy's own two hops cost "
            f"{own.get('added_postgres_ms', '?')} / {own.get('added_redis_ms', '?')} ms per "
            "PostgreSQL / Redis round trip (at `--rtt 0`, measured before the sitting), so it "
            f"ran with `--rtt {opts.proxy_rtt:g}`. Added round trip measured before each run "
            "(median of 200 `SELECT 1` / `PING`, through it minus without it): PostgreSQL "
            + fmt(med([c["added_postgres_ms"] for c in cal]), 2, " ms")
            + ", Redis "
            + fmt(med([c["added_redis_ms"] for c in cal]), 2, " ms")
            + "; without it "
            + fmt(med([c["direct"]["postgres_ms"] for c in cal]), 3, " ms")
            + " / "
            + fmt(med([c["direct"]["redis_ms"] for c in cal]), 3, " ms")
        )
    env = passed_through()
    w(
        "* RIM_* settings from run.py's environment, passed to every server: "
        + (", ".join(f"`{k}={v}`" for k, v in env.items()) if env else "none")
    )
    w("")
    w("### Results")
    w("")
    w(
        "| scenario | stack | acked msgs/s | of embedded | ack p50 ms | ack p99 ms | "
        "deliveries/s | lost / dup (all runs) | server CPU % of a core |"
    )
    w("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for cell, figs in s.figs.items():
        sc, stack = cell
        if sc == "d":
            w(
                f"| d, idle | {stack} | {fmt(med([f['still_open'] for f in figs]))} "
                "connections held | | | | "
                f"{fmt(med([f['rss_per_conn_kib'] for f in figs]), 1, ' KiB')} RSS each | "
                f"{sum(f['failures'] for f in figs)} failures | |"
            )
            continue
        ratio = s.ratio(cell) if stack != "embedded" else None
        w(
            f"| {sc} | {stack} | {fmt(med([f['msgs_s'] for f in figs]))} "
            f"| {'' if ratio is None else f'{ratio:.0%}'} "
            f"| {fmt(med([f['ack_p50'] for f in figs]), 1)} "
            f"| {fmt(med([f['ack_p99'] for f in figs]), 1)} "
            f"| {fmt(med([f['deliv_s'] for f in figs]))} "
            f"| {sum(f['lost'] for f in figs)} / {sum(f['dup'] for f in figs)} "
            f"| {fmt(med([f['srv_cpu'] for f in figs]))} |"
        )
    failed = [r for rs in runs.values() for r in rs if r["result"] is None]
    if failed:
        w("")
        w(
            f"**{len(failed)} run(s) produced no result** (see their logs under "
            "benchmarks/out/): "
            + ", ".join(f"{r['scenario']} {r['stack']} #{r['run']}" for r in failed)
        )
    w("")
    w(
        (
            "Scenarios (full sizes; `--quick` ran smaller ones, see the commands): "
            if opts.quick
            else "Scenarios: "
        )
        + "; ".join(SCENARIO_TEXT[sc] for sc in dict.fromkeys(c[0] for c in runs))
        + "."
    )
    w("")
    w("### Targets")
    w("")
    w("| issue | target | measured (medians) | |")
    w("|---:|---|---|---|")
    for t, ok, shown in judged:
        w(f"| {t.issue} | {t.text} | {shown} | {mark(ok)} |")
    clean = all_clean(runs)
    w(
        "| 6 | 0 lost and 0 duplicated deliveries in every run | "
        f"{'0 / 0' if clean else 'see the per-run table'} | "
        f"{mark(None if opts.quick else clean)} |"
    )
    if opts.quick:
        w("")
        w("Not judged: `--quick` runs are far too small for the targets.")
    w("")
    w("### Every run")
    w("")
    w(
        "| run | acked | msgs/s | ack p50 / p99 ms | delivery p50 / p99 ms | deliveries/s | "
        "expected / lost / dup / out-of-order | drain s | errors | server CPU % | loadgen CPU % "
        "| proxy CPU % | core 0 / 1 busy % | other % | rc |"
    )
    w("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for label, f, r in each_run(runs, idle=False):
        if f is None:
            w(f"| {label} | no result | | | | | | | | | | | | | {r['rc']} |")
            continue
        w(
            f"| {label} | {f['acked']:,}/{f['planned']:,} | {f['msgs_s']:,.0f} "
            f"| {f['ack_p50']:,.1f} / {f['ack_p99']:,.1f} "
            f"| {f['dlv_p50']:,.1f} / {f['dlv_p99']:,.1f} "
            f"| {f['deliv_s']:,.0f} | {f['expected']:,} / {f['lost']} / {f['dup']} / "
            f"{f['ooo']} | {f['drain_s']} | {f['errors']} | {f['srv_cpu']} | {f['lg_cpu']} "
            f"| {'' if f['proxy_cpu'] is None else f['proxy_cpu']} "
            f"| {f['cores']} | {f['other_pct']} | {r['rc']} |"
        )
    if any(sc == "d" for sc, _ in runs):
        w("")
        w(
            "| run | connections held / failures | opened per s | login p99 ms | server RSS "
            "before → after | RSS per idle connection | other % | rc |"
        )
        w("|---|---:|---:|---:|---:|---:|---:|---:|")
    for label, f, r in each_run(runs, idle=True):
        if f is None:
            w(f"| {label} | no result | | | | | | {r['rc']} |")
            continue
        w(
            f"| {label} | {f['still_open']:,} / {f['failures']} "
            f"| {f['connects_per_s']} | {f['login_p99']} "
            f"| {f['rss_base_mib']:.1f} → {f['rss_end_mib']:.1f} MiB "
            f"| {f['rss_per_conn_kib']} KiB"
            f"{'' if f['rss_reliable'] else ' (connections closed early)'} "
            f"| {f['other_pct']} | {r['rc']} |"
        )
    w("")
    w(
        "`of embedded`: the stack's median acked msgs/s over embedded's in this sitting. "
        "`drain s`: how long after the last ack the last delivery arrived (the generator "
        "waits up to 300 s; a delivery missing then counts as lost). `proxy CPU %`: "
        "delayproxy's CPU over the whole run, % of one core. `core 0 / 1 busy %`: how busy "
        "each core was over the measurement (server on core 0, loadgen on core 1). "
        "`other %`: the machine's busy time minus the server's and the generator's CPU, in "
        "% of one core: on the production stacks it includes PostgreSQL, Redis and the "
        "proxy; it also includes loopback networking in softirq, which /proc charges to no "
        "process. `rc`: loadgen's exit status (0 = every acked message delivered, no phase "
        "timed out)."
    )
    w("")
    w("### Commands")
    w("")
    w("The whole sitting:")
    w("")
    w("```sh")
    w(meta["argv"])
    w("```")
    w("")
    w(
        "One run of each cell, as run.py ran it (paths relative to the repository; each "
        "run had its own temporary directory, database, free port and generated secret "
        "key):"
    )
    w("")
    w("```sh")
    for (sc, stack), rs in runs.items():
        if rs and rs[0]["commands"]:
            w(f"# {sc} on {stack}")
            w("\n".join(rs[0]["commands"]))
    w("```")
    w("")
    w(
        "`loadgen.py --scenario X` is issue 6's workload (benchmarks/README.md); a run ends "
        "when every delivery has arrived, or 300 s after the last ack (`--drain 300`)."
    )
    for cell, p in profiles.items():
        why = next((shown for t, ok, shown in judged if t.cell == cell and ok is False), "")
        w("")
        w(f"### Profile: {cell[0]} on {cell[1]} ({why})")
        w("")
        w(
            f"One extra run (not in the figures above) with py-spy attached to the server "
            f"once the load started: `{p['cmd']}`. {p['samples']:,} samples of work kept; "
            f"{p['idle_samples']:,} idle samples (a thread waiting in select/epoll, a lock, "
            "a condition or a pool worker's queue) left out. Line numbers folded into "
            "functions; % of the kept samples."
        )
        if p.get("threads"):
            w("")
            w(
                "Work by thread: "
                + ", ".join(f"{k} {v}%" for k, v in sorted(p["threads"].items()))
                + "."
            )
        if p.get("run_figures"):
            w("")
            w(f"That run (slowed by the sampling): {p['run_figures']}.")
        w("")
        w("| self % | cum % | function (file), by self time |")
        w("|---:|---:|---|")
        for pct, name, full in p["self"]:
            w(f"| {pct} | {p['cum_of'].get(full, '')} | {name} |")
        w("")
        w("| cum % | self % | function (file), by cumulative time (thread entries left out) |")
        w("|---:|---:|---|")
        for pct, name, full in p["cum"]:
            w(f"| {pct} | {p['self_of'].get(full, 0.0)} | {name} |")
    w(BENCH_END)
    return "\n".join(lines), judged


def write_results(out: Path, block: str) -> None:
    """Put `block` between the markers of `out`, or at its top; the rest stays."""
    text = out.read_text() if out.exists() else ""
    if BENCH_BEGIN in text and BENCH_END in text:
        a, b = text.index(BENCH_BEGIN), text.index(BENCH_END) + len(BENCH_END)
        text = text[:a] + block + text[b:]
    elif text.startswith("# "):
        title, _, rest = text.partition("\n")
        text = f"{title}\n\n{block}\n\n{rest.lstrip()}"
    else:
        text = f"# Benchmark results\n\n{block}\n\n{text}"
    out.write_text(text.rstrip("\n") + "\n")


def profile_summary_for(run: dict) -> str:
    f = figures(run)
    if not f:
        return ""
    if "msgs_s" in f:
        return (
            f"{f['msgs_s']:,.0f} acked msgs/s, ack p99 {f['ack_p99']} ms, "
            f"{f['deliv_s']:,.0f} deliveries/s, server CPU {f['srv_cpu']}% of a core"
        )
    return f"{f['still_open']:,} connections, {f['rss_per_conn_kib']} KiB RSS each"


# ------------------------------------------------------------------ main


def cells_of(opts) -> list[tuple[str, str]]:
    """The default cells filtered by --scenarios / --stacks; with both given, every
    combination of them."""
    if opts.scenarios and opts.stacks:
        return [(sc, st) for sc in opts.scenarios for st in opts.stacks]
    return [
        (sc, st)
        for sc, st in DEFAULT_CELLS
        if (not opts.scenarios or sc in opts.scenarios) and (not opts.stacks or st in opts.stacks)
    ]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--scenarios", help="of a,b,c,d (default: the cells listed below)")
    ap.add_argument("--stacks", help="of " + ",".join(STACKS))
    ap.add_argument("--runs", type=int, help="runs per cell (default 3; 1 with --quick)")
    ap.add_argument("--quick", action="store_true", help="small sizes, for a smoke check")
    ap.add_argument("--out", type=Path, default=RESULTS, help="Markdown report")
    ap.add_argument("--tree", type=Path, help="run the servers from this checkout")
    ap.add_argument("--no-pin", action="store_true", help="do not use taskset")
    ap.add_argument("--no-profile", action="store_true", help="no py-spy run for a missed target")
    ap.add_argument("--profile-seconds", type=int, default=20)
    ap.add_argument("--redis-url", default=REDIS_URL, help="Redis of the production stacks")
    ap.epilog = "Default cells: " + ", ".join(f"{sc} on {st}" for sc, st in DEFAULT_CELLS)
    opts = ap.parse_args(argv)
    for name, allowed in (("scenarios", SCENARIOS), ("stacks", STACKS)):
        given = getattr(opts, name)
        items = [x for x in given.split(",") if x] if given else []
        bad = [x for x in items if x not in allowed]
        if bad:
            ap.error(f"--{name}: unknown {bad}; of {','.join(allowed)}")
        setattr(opts, name, items)
    if opts.runs is None:
        opts.runs = 1 if opts.quick else 3
    if not 1 <= opts.runs <= 10:
        ap.error("--runs must be within 1..10")
    for url in (opts.redis_url, PG_ADMIN_URL):
        if not loopback_url(url):
            ap.error(f"{url}: loopback only")
    opts.tree = Tree.at(opts.tree)
    opts.cells = cells_of(opts)
    if not opts.cells:
        ap.error("nothing to run: no default cell matches --scenarios and --stacks")
    return opts


def main() -> int:
    opts = parse_args()
    # Also when started in the background, where SIGINT would be inherited as ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)
    raise_nofile()
    out_root = BENCH / "out"
    out_root.mkdir(exist_ok=True)
    workdir = Path(
        tempfile.mkdtemp(prefix=time.strftime("run-%Y%m%d-%H%M%S-"), dir=out_root)
    ).resolve()
    log(f"logs and JSON under {workdir}; cells: {opts.cells}; servers from {opts.tree.root}")
    meta = {
        "start": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M"),
        "load_start": round(os.getloadavg()[0], 2),
        "argv": " ".join(
            [
                *(f"{k}={shlex.quote(v)}" for k, v in passed_through().items()),
                shlex.join([os.path.relpath(PYTHON, ROOT), "benchmarks/run.py", *sys.argv[1:]]),
            ]
        ),
        "machine": machine(opts.tree),
    }
    opts.proxy_rtt = None
    if any(stack == "production+1ms" for _, stack in opts.cells):
        _, pin_lg = pinning() if not opts.no_pin else ([], [])
        opts.proxy_rtt, meta["proxy_rtt0"] = proxy_rtt_for(
            ADDED_RTT_MS, workdir, opts.redis_url, pin_lg
        )
        log(f"delayproxy will run with --rtt {opts.proxy_rtt:g} to add {ADDED_RTT_MS:g} ms")
    runs: dict[tuple[str, str], list[dict]] = {cell: [] for cell in opts.cells}
    profiles: dict[tuple[str, str], dict] = {}

    def write() -> list:
        meta["end"] = datetime.datetime.now(datetime.UTC).strftime("%H:%M")
        block, judged = report(opts, runs, profiles, meta)
        write_results(opts.out, block)
        return judged

    try:
        for n in range(1, opts.runs + 1):
            for cell in opts.cells:
                log(f"{cell[0]} on {cell[1]}, run {n}/{opts.runs}")
                try:
                    run = one_run(cell, n, opts, workdir)
                except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
                    log(f"{cell} #{n} failed: {exc!r}")
                    run = {
                        "scenario": cell[0],
                        "stack": cell[1],
                        "run": n,
                        "rc": None,
                        "result": None,
                        "commands": [],
                    }
                log(f"{cell[0]} on {cell[1]} #{n}: rc {run['rc']} {json.dumps(figures(run))}")
                runs[cell].append(run)
                (workdir / "runs.json").write_text(
                    json.dumps({f"{k[0]} {k[1]}": v for k, v in runs.items()}, default=str)
                )
        judged = write()
        missed = list(dict.fromkeys(t.cell for t, ok, _ in judged if ok is False))
        if missed and not opts.no_profile and not opts.quick:
            for cell in missed:
                log(f"{cell}: target not met, one more run under py-spy")
                try:
                    run = one_run(cell, 0, opts, workdir, profile=True)
                except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
                    log(f"{cell} profile run failed: {exc!r}")
                    continue
                if run["profile"] and Path(run["profile"]).exists():
                    p = fold_profile(Path(run["profile"]), opts.tree.root)
                    p["cmd"] = run["profile_cmd"].replace(str(ROOT) + "/", "")
                    p["run_figures"] = profile_summary_for(run)
                    profiles[cell] = p
            judged = write()
        log(f"wrote {opts.out}")
        print(opts.out.read_text())
        return 0 if all_clean(runs) and all(ok is not False for _, ok, _ in judged) else 1
    finally:
        stop_all()


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        log("interrupted; every process this run started is stopped")
        sys.exit(130)
