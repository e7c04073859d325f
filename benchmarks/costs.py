#!/usr/bin/env python3
"""The measured costs per unit behind docs/SCALING.md, on the production stack
(PostgreSQL + Redis): one `manage.py serve` pinned to core 0, the load generator on
core 1, a fresh database and layer prefix per run, as `make bench` runs them
(benchmarks/run.py's machinery).

Runs:
  one-to-one  scenario a's shape (pairs): one push per message
  fan-out     scenario c's shape (groups of 50): 49 pushes per message
  hot group   every user in one group, window 4: the limit of a single group, whose
              row lock each send holds until its commit
  idle        idle logged-in connections: memory per connection

For each load run it reads, around the load phase: the server's CPU (from loadgen),
PostgreSQL's WAL position and commit count (pg_current_wal_lsn, pg_stat_database),
and Redis's command and byte counters (INFO). Per message and per push, the server's
CPU is solved from the two load runs: cpu = sends * S + pushes * P.

    .venv/bin/python benchmarks/costs.py --out /tmp/costs.md
    .venv/bin/python benchmarks/costs.py --quick --out /tmp/costs-quick.md
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import run as bench

LOADS = {
    "one-to-one": ["--scenario", "a", "--msgs-per-user", "300", "--drain", "60"],
    "fan-out": ["--scenario", "c", "--msgs-per-user", "20", "--drain", "120"],
    "hot group": [
        *("--users", "40", "--group-size", "40", "--window", "4"),
        *("--msgs-per-user", "100", "--drain", "120"),
    ],
    "idle": ["--scenario", "d", "--idle", "5000", "--idle-users", "100", "--idle-seconds", "20"],
}
QUICK = {
    "one-to-one": ["--scenario", "a", "--users", "4", "--msgs-per-user", "30"],
    "fan-out": ["--scenario", "c", "--users", "20", "--group-size", "10", "--msgs-per-user", "5"],
    "hot group": ["--users", "8", "--group-size", "8", "--window", "2", "--msgs-per-user", "10"],
    "idle": ["--scenario", "d", "--idle", "200", "--idle-users", "20", "--idle-seconds", "3"],
}


def database_counters(database_url: str) -> dict:
    import psycopg

    name = database_url.rsplit("/", 1)[1]
    with psycopg.connect(bench.PG_ADMIN_URL, autocommit=True) as conn:
        lsn = conn.execute("SELECT pg_current_wal_lsn() - '0/0'::pg_lsn").fetchone()[0]
        commits = conn.execute(
            "SELECT xact_commit FROM pg_stat_database WHERE datname = %s", (name,)
        ).fetchone()[0]
    return {"wal_bytes": int(lsn), "commits": commits}


def redis_counters(redis_url: str) -> dict:
    import redis

    client = redis.Redis.from_url(redis_url)
    try:
        stats = client.info("stats")
    finally:
        client.close()
    return {
        "commands": stats["total_commands_processed"],
        "bytes_in": stats["total_net_input_bytes"],
        "bytes_out": stats["total_net_output_bytes"],
    }


def counters(services) -> dict:
    return {**database_counters(services.database_url), **redis_counters(services.redis_url)}


def one_load(name: str, args: list[str], opts, workdir: Path) -> dict:
    pin_srv, pin_lg = bench.pinning()
    rundir = workdir / name.replace(" ", "-")
    rundir.mkdir(parents=True, exist_ok=True)
    json_path = rundir / "result.json"
    marks: dict[str, dict] = {}
    with contextlib.ExitStack() as stack:
        services = stack.enter_context(bench.open_stack("production", rundir, opts.redis_url))
        server = bench.Server(rundir, opts.tree, services, pin_srv)
        stack.callback(server.close)
        cmd = [*pin_lg, bench.PYTHON, str(bench.LOADGEN), *server.loadgen_args(json_path, args)]
        bench.log(f"{name}: starting")
        trigger = b"connect: " if "--idle" in args else b"load: start"
        bench.run_loadgen(
            cmd,
            rundir,
            name,
            bench.RUN_LIMIT["c"],
            on_start=lambda: marks.setdefault("before", counters(services)),
            trigger=trigger,
        )
        marks["after"] = counters(services)
    result = json.loads(json_path.read_text())
    before, after = marks.get("before", marks["after"]), marks["after"]
    return {
        "name": name,
        "result": result,
        "delta": {key: after[key] - before[key] for key in after},
        "command": bench.show_cmd({}, cmd),
    }


def per_unit(runs: dict) -> dict:
    """Server CPU per send (S) and per push (P) from the one-to-one and fan-out runs."""
    rows = []
    for name in ("one-to-one", "fan-out"):
        result = runs[name]["result"]
        rows.append(
            (
                result["messages"]["acked_ok"],
                result["deliveries"]["received"],
                result["server"]["cpu_s"],
            )
        )
    (m1, d1, c1), (m2, d2, c2) = rows
    push = (c2 * m1 - c1 * m2) / (d2 * m1 - d1 * m2)
    send = (c1 - d1 * push) / m1
    return {"send_ms": send * 1000, "push_us": push * 1e6}


def idle_kib(result: dict) -> float | None:
    return (result.get("server") or {}).get("rss_per_idle_connection_kb")


def report(runs: dict, opts) -> str:
    lines = [
        "# Costs per unit, production stack (PostgreSQL + Redis)",
        "",
        f"{time.strftime('%Y-%m-%d %H:%M')}, `{' '.join(sys.argv)}`",
        "",
        "| run | acked msgs/s | deliveries/s | server CPU s | WAL bytes/msg | commits/msg "
        "| Redis cmds/msg | Redis bytes in+out/msg |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, run in runs.items():
        result, delta = run["result"], run["delta"]
        if name == "idle":
            continue
        acked = result["messages"]["acked_ok"] or 1
        lines.append(
            f"| {name} | {result['acked_msgs_per_s']:,.0f} | {result['deliveries_per_s']:,.0f} "
            f"| {result['server']['cpu_s']} | {delta['wal_bytes'] / acked:,.0f} "
            f"| {delta['commits'] / acked:.2f} | {delta['commands'] / acked:.2f} "
            f"| {(delta['bytes_in'] + delta['bytes_out']) / acked:,.0f} |"
        )
    unit = per_unit(runs)
    idle = runs["idle"]["result"]
    lines += [
        "",
        f"- server CPU per send: {unit['send_ms']:.3f} ms; per push: {unit['push_us']:.1f} µs",
        f"- memory per idle logged-in connection: {idle_kib(idle)} KiB",
        "",
        "Commands:",
        "",
        *(f"    {run['command']}" for run in runs.values()),
        "",
    ]
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--quick", action="store_true", help="small sizes: a smoke check")
    ap.add_argument("--redis-url", default=bench.REDIS_URL)
    opts = ap.parse_args()
    opts.tree = bench.Tree.at(None)
    workdir = bench.BENCH / "out" / f"costs-{time.strftime('%Y%m%d-%H%M%S')}"
    loads = QUICK if opts.quick else LOADS
    try:
        runs = {name: one_load(name, args, opts, workdir) for name, args in loads.items()}
    finally:
        bench.stop_all()
    opts.out.write_text(report(runs, opts))
    bench.log(f"wrote {opts.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
