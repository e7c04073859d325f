#!/usr/bin/env python3
"""Scale-out figures for the README (issue 4): one daphne process vs two, and
RedisChannelLayer ("core") vs RedisPubSubChannelLayer ("pubsub"), measured with the
project's load generator (benchmarks/loadgen.py).

For every configuration this starts its own servers (`manage.py serve`, production
settings: RIM_DEBUG=0, no rate limit, a fast password hasher for setup), a fresh
PostgreSQL database and a private redis-server on a free port (so nothing else on the
machine shares its channels), runs one loadgen workload against them and kills
everything again. With two processes, users alternate between them by uid, so every
group has members on both processes and every fan-out crosses the channel layer.
Server CPU is summed over the server processes.

    .venv/bin/python benchmarks/scaleout.py                     # scenario b, all configs
    .venv/bin/python benchmarks/scaleout.py --configs core1,core2 --rounds 2

Loopback only; PostgreSQL at RIM_TEST_POSTGRES (default postgres://127.0.0.1:5432/test).
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
from contextlib import ExitStack, contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import loadgen  # noqa: E402

from tests.live import DaphneServer, free_port, fresh_postgres_database, wait_for_port  # noqa: E402

ProcStats = loadgen.ProcStats

CONFIGS = {
    # name: (processes, database, channel layer)
    "sqlite1": (1, "sqlite", None),
    "core1": (1, "postgres", "core"),
    "core2": (2, "postgres", "core"),
    "pubsub1": (1, "postgres", "pubsub"),
    "pubsub2": (2, "postgres", "pubsub"),
}

SERVER_ENV = {
    "RIM_DEBUG": "0",
    "RIM_SECRET_KEY": "scaleout-benchmark-secret-key-not-for-production-use-0123456789",
    "RIM_RATE_LIMIT": "0",
    "RIM_LOG_LEVEL": "WARNING",
}


@contextmanager
def private_redis(workdir: Path):
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("scaleout: redis-server is not installed")
    port = free_port()
    log = (workdir / "redis.log").open("a")
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        wait_for_port(port, timeout=15, process=process)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=15)


@contextmanager
def servers_for(config: str, workdir: Path):
    """Start the servers of `config`; yields them, kills them at the end."""
    processes, database, layer = CONFIGS[config]
    workdir.mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:
        env = dict(SERVER_ENV)
        if database == "postgres":
            env["DATABASE_URL"] = stack.enter_context(fresh_postgres_database())
        if layer is not None:
            env["REDIS_URL"] = stack.enter_context(private_redis(workdir))
            env["RIM_CHANNEL_LAYER"] = layer
        servers = [
            DaphneServer(workdir / f"{config}-{n}", env=env, name=f"{config}-{n}")
            for n in range(processes)
        ]
        stack.callback(lambda: [s.kill() for s in servers])
        servers[0].start()
        for server in servers[1:]:
            server.migrated = True
            server.start()
        yield servers


class SummedProcStats:
    """loadgen.ProcStats over several server processes: CPU and memory summed."""

    def __init__(self, pids: list[int]) -> None:
        self.procs = [ProcStats(pid) for pid in pids]

    def sample(self) -> dict | None:
        samples = [p.sample() for p in self.procs]
        if any(s is None for s in samples):
            return None
        return {
            "t": max(s["t"] for s in samples),
            "cpu_s": sum(s["cpu_s"] for s in samples),
            "rss_kb": sum(s["rss_kb"] for s in samples),
            "hwm_kb": sum(s["hwm_kb"] for s in samples),
            "threads": sum(s["threads"] for s in samples),
        }


def run_loadgen(servers: list[DaphneServer], loadgen_args: list[str]) -> dict:
    """One loadgen run, users spread over `servers` by uid."""
    args = loadgen.parse_args(
        ["--url", servers[0].http_url, "--quiet", "--settle", "30", *loadgen_args]
    )
    ws_urls = [s.ws_url for s in servers]
    plain_open_and_login = loadgen.open_and_login

    async def open_and_login(args, uid, token, timeout):
        spread = copy.copy(args)
        spread.ws_url = ws_urls[uid % len(ws_urls)]
        return await plain_open_and_login(spread, uid, token, timeout)

    pids = [s.process.pid for s in servers]
    loadgen.open_and_login = open_and_login
    loadgen.ProcStats = lambda _pid: SummedProcStats(pids)
    try:
        return asyncio.run(loadgen.amain(args))
    finally:
        loadgen.open_and_login = plain_open_and_login
        loadgen.ProcStats = ProcStats


def figures(result: dict) -> dict:
    d = result["deliveries"]
    server = result.get("server") or {}
    return {
        "acked_msgs_per_s": result["acked_msgs_per_s"],
        "deliveries_per_s": result["deliveries_per_s"],
        "ack_p50_ms": result["ack_latency_ms"].get("p50"),
        "ack_p99_ms": result["ack_latency_ms"].get("p99"),
        "delivery_p50_ms": result["delivery_latency_ms"].get("p50"),
        "delivery_p99_ms": result["delivery_latency_ms"].get("p99"),
        "server_cpu_pct": server.get("cpu_pct_of_one_core"),
        "lost": d["lost"],
        "drain_timed_out": d["drain_timed_out"],
        "duplicated": d["duplicated"],
        "out_of_order": d["out_of_order"],
        "errors": result["messages"]["errors"],
        "closed": result["connections_closed_during_run"],
        "wall_s": result["wall_s"],
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--configs", default=",".join(CONFIGS), help="comma-separated, of: " + ", ".join(CONFIGS)
    )
    ap.add_argument("--rounds", type=int, default=1, help="runs per config (interleaved)")
    ap.add_argument("--json", metavar="PATH", help="write every run's figures here")
    ap.add_argument(
        "loadgen_args",
        nargs=argparse.REMAINDER,
        help="after --: loadgen options (default: --scenario b)",
    )
    opts = ap.parse_args()
    configs = [c for c in opts.configs.split(",") if c]
    unknown = [c for c in configs if c not in CONFIGS]
    if unknown:
        ap.error(f"unknown configs: {unknown}")
    extra = [a for a in opts.loadgen_args if a != "--"] or ["--scenario", "b"]

    runs: dict[str, list[dict]] = {c: [] for c in configs}
    # Kept afterwards: the servers' logs explain a failed run.
    tmp = tempfile.mkdtemp(prefix="rim-scaleout-")
    loadgen.log(f"scaleout: server logs under {tmp}")
    for round_no in range(opts.rounds):
        for config in configs:
            loadgen.log(f"scaleout: {config}, round {round_no + 1}")
            try:
                with servers_for(config, Path(tmp) / f"r{round_no}") as servers:
                    result = run_loadgen(servers, extra)
            except (loadgen.RestError, OSError, RuntimeError, SystemExit) as exc:
                loadgen.log(f"scaleout: {config}: run failed: {exc!r}")
                continue
            run = figures(result)
            run["load_avg_1m"] = round(os.getloadavg()[0], 2)
            runs[config].append(run)
            loadgen.log(f"scaleout: {config}: {json.dumps(run)}")

    print(f"loadgen {' '.join(extra)}; {opts.rounds} round(s); median over rounds")
    header = (
        "config",
        "msgs/s",
        "deliv/s",
        "ack p50",
        "ack p99",
        "dlv p50",
        "dlv p99",
        "srv cpu%",
        "lost",
        "dup",
        "order",
    )
    print(" | ".join(header))
    for config, results in runs.items():

        def med(key, results=results):
            values = [r[key] for r in results if r[key] is not None]
            return round(statistics.median(values), 1) if values else None

        print(
            " | ".join(
                str(v)
                for v in (
                    config,
                    med("acked_msgs_per_s"),
                    med("deliveries_per_s"),
                    med("ack_p50_ms"),
                    med("ack_p99_ms"),
                    med("delivery_p50_ms"),
                    med("delivery_p99_ms"),
                    med("server_cpu_pct"),
                    sum(r["lost"] for r in results),
                    sum(r["duplicated"] for r in results),
                    sum(r["out_of_order"] for r in results),
                )
            )
        )
    if opts.json:
        Path(opts.json).write_text(json.dumps(runs, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
