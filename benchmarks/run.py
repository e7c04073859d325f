#!/usr/bin/env python3
"""`make bench`: the scenarios of issue 6, measured and written to benchmarks/RESULTS.md.

For every run this starts a fresh server the way `make run` does (`manage.py migrate`,
then `manage.py serve`), with benchmark settings: a new SQLite file in a temporary
directory, RIM_DEBUG=0 with a generated secret key, no rate limit, a fast password
hasher for the (untimed) setup, log level WARNING and free loopback ports. The server
is pinned to core 0 and the load generator (benchmarks/loadgen.py) to core 1 when the
machine has two cores or more. Scenarios a, b, c and d run `--runs` times each (3 by
default), each run on its own server; "b-pg" is scenario b against two `manage.py
serve` processes on a fresh PostgreSQL database and Redis, with users split between
the two processes. A target that is not met gets one extra run under py-spy, and its
profile goes into RESULTS.md.

    .venv/bin/python benchmarks/run.py                       # everything (make bench)
    .venv/bin/python benchmarks/run.py --scenarios a,b --runs 1
    .venv/bin/python benchmarks/run.py --quick               # small sizes: a smoke check

Every process it starts runs in its own session and is killed at the end, also on
Ctrl-C, SIGTERM or an error; the PostgreSQL database it creates is dropped. Loopback
only. Per-run JSON, logs and profiles go to benchmarks/out/ (not committed).
"""

from __future__ import annotations

import argparse
import collections
import contextlib
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
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "benchmarks"
PYTHON = sys.executable
LOADGEN = BENCH / "loadgen.py"
RESULTS = BENCH / "RESULTS.md"
FAST_HASHER = "django.contrib.auth.hashers.MD5PasswordHasher"
PG_ADMIN_URL = os.environ.get("RIM_BENCH_POSTGRES", "postgres://127.0.0.1:5432/test")
REDIS_URL = os.environ.get("RIM_BENCH_REDIS", "redis://127.0.0.1:6379/0")
SOAK_BEGIN, SOAK_END = "<!-- soak:begin -->", "<!-- soak:end -->"
# Hand-written analysis between these markers survives a rerun of run.py.
NOTES_BEGIN, NOTES_END = "<!-- notes:begin -->", "<!-- notes:end -->"

ALL_SCENARIOS = ("a", "b", "c", "d", "b-pg")

# loadgen options per scenario. The presets (--scenario) are issue 6's workloads.
FULL = {
    # --drain 300: deliveries still queued after the last ack count as lost only when
    # they have not arrived 300 s later (loadgen's default, 30 s, can count late as lost).
    "a": ["--scenario", "a", "--drain", "300"],
    "b": ["--scenario", "b", "--drain", "300"],
    "c": ["--scenario", "c", "--drain", "300"],
    "d": ["--scenario", "d", "--timeout", "900"],
    "b-pg": ["--scenario", "b", "--drain", "300"],
}
QUICK = {
    "a": ["--scenario", "a", "--users", "4", "--msgs-per-user", "20"],
    "b": ["--scenario", "b", "--users", "20", "--msgs-per-user", "10"],
    "c": ["--scenario", "c", "--users", "20", "--group-size", "10", "--msgs-per-user", "5"],
    "d": ["--scenario", "d", "--idle", "300", "--idle-users", "20", "--idle-seconds", "5"],
    "b-pg": ["--scenario", "b", "--users", "20", "--msgs-per-user", "10"],
}
# Wall-clock bound of one loadgen process (setup, settle, load, drain), seconds.
RUN_LIMIT = {"a": 600, "b": 900, "c": 900, "d": 1500, "b-pg": 900}

TARGETS = {
    "a": "≥ 2,000 acked msgs/s and ack p99 ≤ 10 ms",
    "b": "≥ 1,000 acked msgs/s",
    "c": "≥ 600 acked msgs/s and ≥ 29,000 deliveries/s",
    "d": "≥ 10,000 logged-in idle connections at ≤ 32 KiB RSS each",
    "b-pg": "(no target: the production-stack variant of b)",
}
SCENARIO_TEXT = {
    "a": "a, one-to-one: 20 users, groups of 2, 200 msgs/user, window 1",
    "b": "b, groups: 100 users, groups of 10, 100 msgs/user, window 8",
    "c": "c, big groups: 200 users, groups of 50, 20 msgs/user, window 4",
    "d": "d, idle: 10,000 logged-in connections (100 users) held 30 s",
    "b-pg": "b on PostgreSQL + Redis, two `manage.py serve` processes, users split between them",
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


WORKER_THREADS = "worker threads (the database thread, HTTP requests)"


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


def spawn(cmd: list[str], env: dict, logfile: Path) -> subprocess.Popen:
    """Start `cmd` in its own session (so Ctrl-C on the terminal reaches only us and
    we decide how it ends), output to `logfile`, and remember it for cleanup."""
    out = logfile.open("ab")
    try:
        proc = subprocess.Popen(
            cmd,
            cwd=ROOT,
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
            raise RuntimeError(f"server exited with {proc.returncode} before listening")
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


def server_env(database_url: str, port: int, redis_url: str | None = None) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("DJANGO_SETTINGS_MODULE", "REDIS_URL")}
    env.update(
        {
            "DATABASE_URL": database_url,
            "RIM_DEBUG": "0",
            "RIM_SECRET_KEY": secrets.token_urlsafe(48),
            "RIM_RATE_LIMIT": "0",
            "RIM_PASSWORD_HASHERS": FAST_HASHER,
            "RIM_LOG_LEVEL": "WARNING",
            "RIM_HOST": "127.0.0.1",
            "RIM_PORT": str(port),
            "RIM_COMPAT_PORT": "0",
            "PYTHONUNBUFFERED": "1",
        }
    )
    if redis_url:
        env["REDIS_URL"] = redis_url
    return env


SHOWN_ENV = (
    "DATABASE_URL",
    "REDIS_URL",
    "RIM_DEBUG",
    "RIM_SECRET_KEY",
    "RIM_RATE_LIMIT",
    "RIM_PASSWORD_HASHERS",
    "RIM_LOG_LEVEL",
    "RIM_PORT",
    "RIM_COMPAT_PORT",
)


def show_cmd(env: dict, cmd: list[str]) -> str:
    parts = []
    for k in SHOWN_ENV:
        if k in env and not (k == "RIM_PORT" and env[k] == "0"):
            v = "<generated>" if k == "RIM_SECRET_KEY" else env[k]
            parts.append(f"{k}={v}")
    rel = [os.path.relpath(c, ROOT) if c.startswith(str(ROOT)) else c for c in cmd]
    return " ".join([*parts, shlex.join(rel)]).replace(str(ROOT) + "/", "")


class Servers:
    """One or more `manage.py serve` processes on one database, started like `make run`."""

    def __init__(self, workdir: Path, database_url: str, n: int, pin: list[str], redis_url=None):
        self.workdir = workdir
        self.procs: list[subprocess.Popen] = []
        self.ports: list[int] = []
        self.commands: list[str] = []
        migrate_env = server_env(database_url, 0, redis_url)
        cmd = [PYTHON, "manage.py", "migrate", "--verbosity", "0"]
        self.commands.append(show_cmd(migrate_env, cmd))
        r = subprocess.run(
            cmd, cwd=ROOT, env=migrate_env, capture_output=True, text=True, timeout=300
        )
        if r.returncode != 0:
            raise RuntimeError(f"migrate failed: {r.stderr[-2000:]}")
        for i in range(n):
            port = free_port()
            env = server_env(database_url, port, redis_url)
            cmd = [*pin, PYTHON, "manage.py", "serve"]
            self.commands.append(show_cmd(env, cmd) + " &")
            proc = spawn(cmd, env, workdir / f"server{i}.log")
            self.procs.append(proc)
            self.ports.append(port)
        for proc, port in zip(self.procs, self.ports, strict=True):
            wait_for_port(port, proc)

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.procs]

    def close(self) -> None:
        for p in self.procs:
            stop(p)


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


# ------------------------------------------------------------------ one run


def loadgen_cmd(servers: Servers, pin: list[str], extra: list[str], json_path: Path) -> list[str]:
    base = [
        "--url",
        f"http://127.0.0.1:{servers.ports[0]}",
        "--server-pid",
        str(servers.pids[0]),
        "--json",
        str(json_path),
        *extra,
    ]
    if len(servers.procs) == 1:
        return [*pin, PYTHON, str(LOADGEN), *base]
    # Users split between the processes by uid (see split_main).
    return [
        *pin,
        PYTHON,
        str(Path(__file__).resolve()),
        "_split",
        "--ws-urls",
        ",".join(f"ws://127.0.0.1:{p}/ws" for p in servers.ports),
        "--pids",
        ",".join(map(str, servers.pids)),
        "--",
        *base,
    ]


def run_loadgen(
    cmd, workdir: Path, name: str, limit: float, on_start=None, trigger: bytes = b"load: start"
) -> int:
    """Run a loadgen process to its end (bounded by `limit` s); `on_start` is called
    once it logs "load: start"."""
    logfile = workdir / f"{name}.loadgen.log"
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


def one_run(scenario: str, n: int, opts, workdir: Path, profile: bool = False) -> dict:
    pin_srv, pin_lg = pinning() if not opts.no_pin else ([], [])
    name = f"{scenario}-{n}" if not profile else f"{scenario}-profile"
    rundir = workdir / name
    rundir.mkdir(parents=True, exist_ok=True)
    extra = list((QUICK if opts.quick else FULL)[scenario])
    if opts.quick:
        extra += ["--settle", "10", "--drain", "10"]
    json_path = rundir / "result.json"
    with contextlib.ExitStack() as stack:
        if scenario == "b-pg":
            db_url = stack.enter_context(fresh_postgres())
            servers = Servers(rundir, db_url, 2, pin_srv, redis_url=opts.redis_url)
        else:
            db_url = f"sqlite:///{rundir / 'db.sqlite3'}"
            servers = Servers(rundir, db_url, 1, pin_srv)
        stack.callback(servers.close)
        cmd = loadgen_cmd(servers, pin_lg, extra, json_path)
        spy = {}

        def start_profile():
            out = rundir / "profile.raw"
            spy_cmd = [
                str(Path(PYTHON).parent / "py-spy"),
                "record",
                "-p",
                str(servers.pids[0]),
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
            log(f"{name}: py-spy attached to {servers.pids[0]} for {opts.profile_seconds} s")

        log(f"{name}: {shlex.join(cmd)}")
        t0 = time.monotonic()
        rc = run_loadgen(
            cmd,
            rundir,
            name,
            RUN_LIMIT[scenario],
            on_start=start_profile if profile else None,
            # Idle mode has no load phase: profile the connection storm.
            trigger=b"connect: " if scenario == "d" else b"load: start",
        )
        if "proc" in spy:
            with contextlib.suppress(subprocess.TimeoutExpired):
                spy["proc"].wait(timeout=opts.profile_seconds + 30)
            stop(spy["proc"])
        alive = [p.poll() is None for p in servers.procs]
        result = json.loads(json_path.read_text()) if json_path.exists() else None
        return {
            "scenario": scenario,
            "run": n,
            "rc": rc,
            "wall_s": round(time.monotonic() - t0, 1),
            "server_alive_at_end": all(alive),
            "commands": [*servers.commands, show_cmd({}, cmd)],
            "result": result,
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

    if len(set(m)) == 1 or m[1] == m[2]:
        return f"{f(m[0])}{unit}"
    return f"{f(m[0])}{unit} ({f(m[1])}-{f(m[2])})"


def verdict(scenario: str, figs: list[dict], quick: bool) -> tuple[bool | None, str]:
    """Targets of issue 6 on the medians; None when there is no target."""
    if not figs:
        return False, "no successful run"
    if quick:
        return None, "not judged (--quick sizes)"
    if scenario == "b-pg":
        return None, "no target"
    clean = all(f.get("lost", 0) == 0 and f.get("dup", 0) == 0 for f in figs)
    why = []
    if scenario == "d":
        conns = med([f["still_open"] for f in figs])[0]
        rss = med([f["rss_per_conn_kib"] for f in figs])
        ok = conns >= 10_000 and rss is not None and rss[0] <= 32
        if conns < 10_000:
            why.append(f"median {conns:,.0f} connections held")
        if rss is None or rss[0] > 32:
            why.append("RSS per connection above 32 KiB")
        return ok, "; ".join(why)
    rate = med([f["msgs_s"] for f in figs])[0]
    ok = clean
    if not clean:
        why.append("deliveries lost or duplicated")
    if scenario == "a":
        p99 = med([f["ack_p99"] for f in figs])[0]
        if rate < 2000:
            ok, _ = False, why.append(f"{rate:,.0f} < 2,000 msgs/s")
        if p99 > 10:
            ok, _ = False, why.append(f"ack p99 {p99:.1f} ms > 10 ms")
    elif scenario == "b":
        if rate < 1000:
            ok, _ = False, why.append(f"{rate:,.0f} < 1,000 msgs/s")
    elif scenario == "c":
        dps = med([f["deliv_s"] for f in figs])[0]
        if rate < 600:
            ok, _ = False, why.append(f"{rate:,.0f} < 600 msgs/s")
        if dps < 29_000:
            ok, _ = False, why.append(f"{dps:,.0f} < 29,000 deliveries/s")
    return ok, "; ".join(why)


def mark(ok: bool | None) -> str:
    return {True: "**met**", False: "**not met**", None: "-"}[ok]


# ------------------------------------------------------------------ profile


def fold_profile(raw: Path, top: int = 20) -> dict:
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
        for marker in ("site-packages/", "lib/python3", "/work/main/"):
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


def sh(cmd: list[str]) -> str:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT).stdout.strip()
    except OSError:
        return "?"


def machine() -> dict:
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
            PYTHON,
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
        "commit": sh(["git", "rev-parse", "--short", "HEAD"]),
        "commit_subject": sh(["git", "log", "-1", "--format=%s"]),
        "dirty": [
            line.split(maxsplit=1)[-1]
            for line in sh(["git", "status", "--porcelain", "--untracked-files=no"]).splitlines()
        ],
    }


def write_results(opts, runs: dict, profiles: dict, meta: dict, out: Path) -> dict:
    verdicts = {}
    lines = []
    w = lines.append
    m = meta["machine"]
    title = "# Benchmark results (issue 6)"
    if opts.quick:
        title += " — QUICK SMOKE CHECK, small sizes: not the issue-6 figures"
    w(title)
    w("")
    w(
        "Written by `benchmarks/run.py` (`make bench`). Each run starts a fresh server on a "
        "fresh database; the figures are the **median of "
        f"{opts.runs} run(s)** with (min-max), measured in one sitting."
    )
    w("")
    w("## Machine and revision")
    w("")
    pin_srv, _ = pinning() if not opts.no_pin else ([], [])
    v = m["versions"] + ["?"] * 5
    w(f"* machine: {m['nproc']} x {m['cpu']}, {m['mem']} memory, Linux {m['kernel']}")
    w(f"* software: Python {v[0]}, Django {v[1]}, daphne {v[2]}, channels {v[3]}, SQLite {v[4]}")
    w(
        f"* date: {meta['start']} - {meta['end']} (UTC); git commit `{m['commit']}` "
        f"({m['commit_subject']})"
        + (f" + uncommitted changes to {', '.join(m['dirty'])}" if m["dirty"] else "")
    )
    w(
        "* pinning: "
        + (
            "server on core 0 (`taskset -c 0`), load generator on core 1 (`taskset -c 1`); "
            "for b-pg both server processes are on core 0, PostgreSQL and Redis are the "
            "machine's services and not pinned"
            if pin_srv
            else "none (fewer than 2 cores, or --no-pin)"
        )
    )
    w(
        f"* load average (1 min) at the start: {meta['load_start']}; other processes' CPU "
        "during each run is in the per-run table (`other %`, % of one core)"
    )
    w("")
    w("## Results")
    w("")
    w(
        "| scenario | acked msgs/s | ack p50 ms | ack p99 ms | deliveries/s | "
        "lost / dup (all runs) | server CPU % of a core | target (issue 6) | |"
    )
    w("|---|---:|---:|---:|---:|---:|---:|---|---|")
    for sc, rs in runs.items():
        figs = [f for f in (figures(r) for r in rs) if f is not None]
        ok, why = verdict(sc, figs, opts.quick)
        verdicts[sc] = (ok, why)
        label = sc if sc != "b-pg" else "b, PostgreSQL + Redis, 2 processes"
        if sc == "d":
            rss = med([f["rss_per_conn_kib"] for f in figs])
            held = med([f["still_open"] for f in figs])
            w(
                f"| d, idle | {fmt(held)} connections held | | | | | | {TARGETS[sc]}: "
                f"{fmt(rss, 1, ' KiB')} per connection | {mark(ok)}"
                + (f" ({why})" if why and ok is False else "")
                + " |"
            )
            continue
        lost = sum(f["lost"] for f in figs)
        dup = sum(f["dup"] for f in figs)
        w(
            f"| {label} | {fmt(med([f['msgs_s'] for f in figs]))} "
            f"| {fmt(med([f['ack_p50'] for f in figs]), 1)} "
            f"| {fmt(med([f['ack_p99'] for f in figs]), 1)} "
            f"| {fmt(med([f['deliv_s'] for f in figs]))} "
            f"| {lost} / {dup} "
            f"| {fmt(med([f['srv_cpu'] for f in figs]))} "
            f"| {TARGETS[sc]} | {mark(ok)}" + (f" ({why})" if why and ok is False else "") + " |"
        )
    failed = [r for rs in runs.values() for r in rs if r["result"] is None]
    if failed:
        w("")
        w(
            f"**{len(failed)} run(s) produced no result** (see their loadgen log under "
            "benchmarks/out/): " + ", ".join(f"{r['scenario']}#{r['run']}" for r in failed)
        )
    w("")
    if not opts.quick:
        w(
            "Zero lost and zero duplicated deliveries in every run: "
            + (
                "**met**."
                if all(
                    f.get("lost", 0) == 0 and f.get("dup", 0) == 0
                    for rs in runs.values()
                    for f in (figures(r) for r in rs)
                    if f
                )
                and not failed
                else "**not met** (see the per-run table)."
            )
        )
        w("")
    w("Scenarios: " + "; ".join(SCENARIO_TEXT[s] for s in runs) + ".")
    w("")
    w("### Every run")
    w("")
    w(
        "| run | acked | msgs/s | ack p50 / p99 ms | delivery p50 / p99 ms | deliveries/s | "
        "expected / lost / dup / out-of-order | drain s | errors | server CPU % | loadgen CPU % | "
        "core 0 / 1 busy % | other % | rc |"
    )
    w("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for sc, rs in runs.items():
        if sc == "d":
            continue
        for r in rs:
            f = figures(r)
            if f is None:
                w(f"| {sc}#{r['run']} | no result | | | | | | | | | | | | {r['rc']} |")
                continue
            w(
                f"| {sc}#{r['run']} | {f['acked']:,}/{f['planned']:,} | {f['msgs_s']:,.0f} "
                f"| {f['ack_p50']:,.1f} / {f['ack_p99']:,.1f} "
                f"| {f['dlv_p50']:,.1f} / {f['dlv_p99']:,.1f} "
                f"| {f['deliv_s']:,.0f} | {f['expected']:,} / {f['lost']} / {f['dup']} / "
                f"{f['ooo']} | {f['drain_s']} | {f['errors']} | {f['srv_cpu']} | {f['lg_cpu']} | "
                f"{f['cores']} | {f['other_pct']} | {r['rc']} |"
            )
    if "d" in runs:
        w("")
        w(
            "| run | connections held / failures | opened per s | login p99 ms | server RSS "
            "before → after | RSS per idle connection | other % | rc |"
        )
        w("|---|---:|---:|---:|---:|---:|---:|---:|")
        for r in runs["d"]:
            f = figures(r)
            if f is None:
                w(f"| d#{r['run']} | no result | | | | | | {r['rc']} |")
                continue
            w(
                f"| d#{r['run']} | {f['still_open']:,} / {f['failures']} | {f['connects_per_s']} "
                f"| {f['login_p99']} | {f['rss_base_mib']:.1f} → {f['rss_end_mib']:.1f} MiB "
                f"| {f['rss_per_conn_kib']} KiB"
                f"{'' if f['rss_reliable'] else ' (connections closed early)'} "
                f"| {f['other_pct']} | {r['rc']} |"
            )
    w("")
    w(
        "`drain s`: how long after the last ack the last delivery arrived (the generator "
        "waits up to 300 s; a delivery missing then counts as lost). `core 0 / 1 busy %`: "
        "how busy each core was over the measurement (server on core 0, loadgen on core 1). "
        "`other %`: the machine's busy time minus the server's and the generator's CPU, in % "
        "of one core (loadgen's `machine` figure). It includes kernel time for loopback "
        "networking (softirq) that /proc charges to no process, not only other programs; "
        "core 0's busy % against the server's CPU % shows whether anything else ran on the "
        "server's core. `rc`: loadgen's exit status (0 = every acked message delivered, no "
        "phase timed out)."
    )
    w("")
    w("## Commands")
    w("")
    w("The whole measurement:")
    w("")
    w("```sh")
    w(meta["argv"])
    w("```")
    w("")
    w(
        "One run of each scenario, as run.py ran it (paths relative to the repository; "
        "each run had its own temporary directory, free port and generated secret key):"
    )
    w("")
    w("```sh")
    for sc, rs in runs.items():
        if rs:
            w(f"# {sc}")
            for c in rs[0]["commands"]:
                w(c.replace(str(BENCH / "out") + "/", "benchmarks/out/"))
    w("```")
    w("")
    w(
        "`loadgen.py --scenario X` is issue 6's workload (benchmarks/README.md); a run "
        "ends when every delivery has arrived, or 300 s after the last ack (`--drain 300`). "
        "For b-pg, `run.py _split` runs loadgen.py with each user's WebSocket on process "
        "`uid % 2` and the server CPU and RSS summed over both processes."
    )
    if profiles:
        w("")
        w("## Profiles of the targets not met")
        for sc, p in profiles.items():
            w("")
            w(f"### {sc}: {verdicts.get(sc, (None, ''))[1]}")
            w("")
            w(
                f"One extra run of {sc} (not in the figures above) with py-spy attached to "
                f"the server once the load started: `{p['cmd']}`. {p['samples']:,} samples "
                f"of work kept; {p['idle_samples']:,} idle samples (a thread waiting in "
                "select/epoll, a lock, a condition or a pool worker's queue) left out. "
                "Line numbers folded into functions; % of the kept samples."
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
            w("Top by self time:")
            w("")
            w("| self % | cum % | function (file) |")
            w("|---:|---:|---|")
            for pct, name, full in p["self"]:
                w(f"| {pct} | {p['cum_of'].get(full, '')} | {name} |")
            w("")
            w("Top by cumulative time (thread entry frames left out):")
            w("")
            w("| cum % | self % | function (file) |")
            w("|---:|---:|---|")
            for pct, name, full in p["cum"]:
                w(f"| {pct} | {p['self_of'].get(full, 0.0)} | {name} |")
            if p.get("notes"):
                w("")
                w(p["notes"])
    # The soak section is written by benchmarks/soak.py, the notes by hand: keep both.
    soak = notes = ""
    if out.exists():
        old = out.read_text()
        if SOAK_BEGIN in old and SOAK_END in old:
            soak = old[old.index(SOAK_BEGIN) : old.index(SOAK_END) + len(SOAK_END)]
        if NOTES_BEGIN in old and NOTES_END in old:
            notes = old[old.index(NOTES_BEGIN) : old.index(NOTES_END) + len(NOTES_END)]
    if notes:
        w("")
        w(notes)
    w("")
    w(
        soak
        or f"{SOAK_BEGIN}\n## Soak\n\nNot run yet: `.venv/bin/python benchmarks/soak.py`.\n"
        f"{SOAK_END}"
    )
    out.write_text("\n".join(lines) + "\n")
    return verdicts


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


def split_main(argv: list[str]) -> int:
    """`run.py _split --ws-urls U1,U2 --pids P1,P2 -- LOADGEN ARGS`: loadgen.py with
    each user's WebSocket on server `uid % len(urls)` and CPU/RSS summed over pids."""
    ap = argparse.ArgumentParser(prog="run.py _split")
    ap.add_argument("--ws-urls", required=True)
    ap.add_argument("--pids", required=True)
    ap.add_argument("rest", nargs=argparse.REMAINDER)
    a = ap.parse_args(argv)
    sys.path.insert(0, str(BENCH))
    import copy

    import loadgen

    urls = a.ws_urls.split(",")
    pids = [int(p) for p in a.pids.split(",")]
    plain_open = loadgen.open_and_login
    plain_stats = loadgen.ProcStats

    async def open_and_login(args, uid, token, timeout):
        spread = copy.copy(args)
        spread.ws_url = urls[uid % len(urls)]
        return await plain_open(spread, uid, token, timeout)

    class Summed:
        def __init__(self, _pid):
            self.procs = [plain_stats(p) for p in pids]

        def sample(self):
            s = [p.sample() for p in self.procs]
            if any(x is None for x in s):
                return None
            out = {"t": max(x["t"] for x in s)}
            for k in ("cpu_s", "rss_kb", "hwm_kb", "threads"):
                out[k] = sum(x[k] for x in s)
            return out

    loadgen.open_and_login = open_and_login
    loadgen.ProcStats = Summed
    rest = [x for x in a.rest if x != "--"] if a.rest[:1] == ["--"] else a.rest
    return loadgen.main(rest)


def main() -> int:
    if sys.argv[1:2] == ["_split"]:
        return split_main(sys.argv[2:])
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scenarios", default=",".join(ALL_SCENARIOS), help="of a,b,c,d,b-pg")
    ap.add_argument("--runs", type=int, default=3, help="runs per scenario")
    ap.add_argument("--quick", action="store_true", help="small sizes, for a smoke check")
    ap.add_argument("--out", type=Path, default=RESULTS, help="Markdown report")
    ap.add_argument("--no-pin", action="store_true", help="do not use taskset")
    ap.add_argument("--no-profile", action="store_true", help="no py-spy run for a missed target")
    ap.add_argument("--profile-seconds", type=int, default=20)
    ap.add_argument("--redis-url", default=REDIS_URL, help="Redis for b-pg")
    opts = ap.parse_args()
    scenarios = [s for s in opts.scenarios.split(",") if s]
    bad = [s for s in scenarios if s not in ALL_SCENARIOS]
    if bad or not 1 <= opts.runs <= 10:
        ap.error(f"unknown scenarios {bad}" if bad else "--runs must be within 1..10")
    for url in (opts.redis_url, PG_ADMIN_URL):
        host = re.sub(r"^\w+://(?:[^@/]*@)?", "", url).split("/")[0].rsplit(":", 1)[0]
        if host not in ("127.0.0.1", "localhost", "[::1]"):
            ap.error(f"{url}: loopback only")

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
    log(f"logs and JSON under {workdir}")
    now = datetime.datetime.now(datetime.UTC)
    meta = {
        "start": now.strftime("%Y-%m-%d %H:%M"),
        "load_start": round(os.getloadavg()[0], 2),
        "argv": shlex.join([os.path.relpath(PYTHON, ROOT), "benchmarks/run.py", *sys.argv[1:]]),
        "machine": machine(),
    }
    runs: dict[str, list[dict]] = {s: [] for s in scenarios}
    profiles: dict[str, dict] = {}
    try:
        for sc in scenarios:
            for n in range(1, opts.runs + 1):
                log(f"scenario {sc}, run {n}/{opts.runs}")
                try:
                    run = one_run(sc, n, opts, workdir)
                except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
                    log(f"{sc}#{n} failed: {exc!r}")
                    run = {"scenario": sc, "run": n, "rc": None, "result": None, "commands": []}
                f = figures(run)
                log(f"{sc}#{n}: rc {run['rc']} {json.dumps(f)}")
                runs[sc].append(run)
                (workdir / "runs.json").write_text(json.dumps(runs, indent=1, default=str))
        meta["end"] = datetime.datetime.now(datetime.UTC).strftime("%H:%M")
        verdicts = write_results(opts, runs, profiles, meta, opts.out)
        missed = [sc for sc, (ok, _) in verdicts.items() if ok is False]
        if missed and not opts.no_profile and not opts.quick:
            for sc in missed:
                log(f"{sc}: target not met, one more run under py-spy")
                try:
                    run = one_run(sc, 0, opts, workdir, profile=True)
                except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
                    log(f"{sc} profile run failed: {exc!r}")
                    continue
                if run["profile"] and Path(run["profile"]).exists():
                    p = fold_profile(Path(run["profile"]))
                    p["cmd"] = run["profile_cmd"].replace(str(ROOT) + "/", "")
                    p["run_figures"] = profile_summary_for(run)
                    profiles[sc] = p
            meta["end"] = datetime.datetime.now(datetime.UTC).strftime("%H:%M")
            write_results(opts, runs, profiles, meta, opts.out)
        log(f"wrote {opts.out}")
        print(opts.out.read_text())
        return 0 if all(ok is not False for ok, _ in verdicts.values()) else 1
    finally:
        stop_all()


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        log("interrupted; every process this run started is stopped")
        sys.exit(130)
