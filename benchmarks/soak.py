#!/usr/bin/env python3
"""Soak test of issue 6: scenario b's workload paced at half of b's measured rate for
a long time, on one fresh server started as `benchmarks/run.py` starts it (SQLite,
RIM_DEBUG=0, pinned to core 0; the load generator on core 1). It samples the server's
RSS and CPU every `--sample` seconds and writes the series' summary, with lost /
duplicated deliveries and errors, into the soak section of benchmarks/RESULTS.md.

    .venv/bin/python benchmarks/soak.py --rate 500 --minutes 30

Without --rate it takes half of scenario b's median from benchmarks/RESULTS.md. Target
(issue 6): flat RSS, under 10% growth after the warm-up, and no errors.
"""

from __future__ import annotations

import argparse
import datetime
import json
import re
import shlex
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import run  # benchmarks/run.py: server start, pinning, cleanup


def rate_from_results(path: Path) -> float:
    for line in path.read_text().splitlines():
        # The sitting's table ("| b | embedded | 2,765 |"), else issue 6's ("| b | 2,765 |").
        m = re.match(r"\|\s*b\s*\|\s*(?:embedded\s*\|\s*)?([\d,\.]+)", line)
        if m:
            return float(m.group(1).replace(",", "")) / 2
    raise SystemExit(f"soak: no scenario b row in {path}; pass --rate")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rate", type=float, help="total msgs/s (default: half of b's median)")
    ap.add_argument("--minutes", type=float, default=30.0, help="load duration")
    ap.add_argument("--warmup-minutes", type=float, default=5.0)
    ap.add_argument("--sample", type=float, default=30.0, help="RSS sampling interval, s")
    ap.add_argument("--out", type=Path, default=run.RESULTS)
    ap.add_argument("--no-pin", action="store_true")
    opts = ap.parse_args()
    rate = opts.rate or rate_from_results(opts.out)
    if not 1 <= rate <= 100_000 or not 0 < opts.minutes <= 55:
        ap.error("--rate within 1..100000, --minutes within (0, 55]")
    users = 100
    msgs_per_user = max(1, round(rate * opts.minutes * 60 / users))

    signal.signal(signal.SIGINT, signal.default_int_handler)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, run.on_signal)
    run.raise_nofile()
    out_root = run.BENCH / "out"
    out_root.mkdir(exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix=time.strftime("soak-%Y%m%d-%H%M%S-"), dir=out_root))
    run.log(f"soak: logs under {workdir}")
    pin_srv, pin_lg = run.pinning() if not opts.no_pin else ([], [])
    started = datetime.datetime.now(datetime.UTC)
    tree = run.Tree.at(None)
    commit = tree.revision()["commit"]  # the revision the server runs, not the one at the end
    samples: list[dict] = []
    try:
        services = run.StackRun("embedded", *[f"sqlite:///{workdir / 'db.sqlite3'}"] * 2)
        server = run.Server(workdir, tree, services, pin_srv)
        pid = server.pid
        json_path = workdir / "result.json"
        cmd = [
            *pin_lg,
            run.PYTHON,
            str(run.LOADGEN),
            "--url",
            server.url,
            "--server-pid",
            str(pid),
            "--json",
            str(json_path),
            "--scenario",
            "b",
            "--rate",
            f"{rate:g}",
            "--msgs-per-user",
            str(msgs_per_user),
            "--timeout",
            str(int(opts.minutes * 60 + 600)),
            "--drain",
            "60",
        ]
        run.log(f"soak: {shlex.join(cmd)}")
        env = {k: v for k, v in run.os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
        lg = run.spawn(cmd, env, workdir / "loadgen.log")
        limit = time.monotonic() + opts.minutes * 60 + 900
        t_load = None
        next_sample = time.monotonic()
        while lg.poll() is None and time.monotonic() < limit:
            if t_load is None and b"load: start" in (workdir / "loadgen.log").read_bytes():
                t_load = time.monotonic()
                next_sample = t_load
                run.log("soak: load started")
            if t_load is not None and time.monotonic() >= next_sample:
                s = run.proc_sample(pid)
                if s:
                    s["min"] = round((s["t"] - t_load) / 60, 2)
                    samples.append(s)
                    if len(samples) % 10 == 1:
                        run.log(f"soak: t={s['min']} min RSS {s['rss_kb'] / 1024:.1f} MiB")
                next_sample += opts.sample
            time.sleep(0.5)
        run.stop(lg)
        server_alive = server.proc.poll() is None
        server.close()
    finally:
        run.stop_all()

    result = json.loads(json_path.read_text()) if json_path.exists() else None
    server_log = (workdir / "server.log").read_text(errors="replace")
    log_errors = len(re.findall(r" (ERROR|CRITICAL) |Traceback", server_log))
    log_warnings = len(re.findall(r" WARNING ", server_log))
    # The load ends with the last ack; samples after it (the drain) are not load.
    load_min = (result or {}).get("ack_span_s") or opts.minutes * 60
    load_samples = [s for s in samples if s["min"] * 60 <= load_min + 1] or samples
    warm = [s for s in load_samples if s["min"] >= opts.warmup_minutes]
    summary = {
        "rate": rate,
        "minutes_planned": opts.minutes,
        "samples": len(load_samples),
        "server_alive_at_end": server_alive,
        "log_errors": log_errors,
        "log_warnings": log_warnings,
    }
    if warm:
        base, end = warm[0]["rss_kb"], warm[-1]["rss_kb"]
        summary.update(
            {
                "rss_first_mib": round(load_samples[0]["rss_kb"] / 1024, 1),
                "rss_after_warmup_mib": round(base / 1024, 1),
                "rss_end_mib": round(end / 1024, 1),
                "rss_max_after_warmup_mib": round(max(s["rss_kb"] for s in warm) / 1024, 1),
                "rss_median_after_warmup_mib": round(
                    statistics.median(s["rss_kb"] for s in warm) / 1024, 1
                ),
                "growth_pct": round(100 * (end - base) / base, 1),
                "max_growth_pct": round(100 * (max(s["rss_kb"] for s in warm) - base) / base, 1),
                "warm_from_min": warm[0]["min"],
                "last_sample_min": warm[-1]["min"],
            }
        )
    (workdir / "soak.json").write_text(
        json.dumps({"summary": summary, "samples": samples, "result": result}, indent=1)
    )
    run.log(f"soak: {json.dumps(summary)}")
    write_section(opts, summary, result, samples, cmd, started, workdir, commit)
    return 0


def write_section(opts, summary, result, samples, cmd, started, workdir, commit) -> None:
    lines = [run.SOAK_BEGIN, "## Soak", ""]
    w = lines.append
    end = datetime.datetime.now(datetime.UTC)
    w(
        f"{started:%Y-%m-%d %H:%M}-{end:%H:%M} UTC, git commit `{commit}`. One fresh server "
        f"(as in run.py), scenario b's workload paced at **{summary['rate']:g} msgs/s** (half of "
        f"b's median) for {opts.minutes:g} min planned; server RSS sampled every "
        f"{opts.sample:g} s from the start of the load."
    )
    w("")
    w("```sh")
    w(shlex.join([run.os.path.relpath(run.PYTHON, run.ROOT), "benchmarks/soak.py", *sys.argv[1:]]))
    w("# which ran:")
    w(run.show_cmd({}, cmd).replace(str(run.BENCH / "out") + "/", "benchmarks/out/"))
    w("```")
    w("")
    ok = True
    if result is None:
        w("**No result**: the load generator wrote no JSON (see its log).")
        ok = False
    else:
        msg, d = result["messages"], result["deliveries"]
        span = result.get("ack_span_s") or 0
        errors = sum(msg["errors"].values())
        w(
            f"* load: {span / 60:.1f} min from first send to last ack; {msg['acked_ok']:,} of "
            f"{msg['planned']:,} messages acked, {result['acked_msgs_per_s']} acked msgs/s; "
            f"ack p50 / p99 {result['ack_latency_ms']['p50']} / "
            f"{result['ack_latency_ms']['p99']} ms; delivery p50 / p99 "
            f"{result['delivery_latency_ms']['p50']} / {result['delivery_latency_ms']['p99']} ms"
        )
        w(
            f"* deliveries: {d['expected']:,} expected, {d['received']:,} received, "
            f"**{d['lost']} lost, {d['duplicated']} duplicated**, {d['out_of_order']} out of order"
        )
        w(
            f"* errors: non-Ok acks {errors} {msg['errors'] or ''}; unacked "
            f"{msg['unacked']}; connections closed by the server "
            f"{result['connections_closed_during_run']}; load phase timed out: "
            f"{msg['timed_out']}; server log: {summary['log_errors']} ERROR/Traceback, "
            f"{summary['log_warnings']} WARNING lines; server alive at the end: "
            f"{summary['server_alive_at_end']}"
        )
        srv = result.get("server") or {}
        w(
            f"* server CPU {srv.get('cpu_pct_of_one_core')}% of a core; loadgen "
            f"{result['loadgen']['cpu_pct_of_one_core']}%; other processes "
            f"{result['machine']['other_processes_pct_of_one_core']}% of a core"
        )
        ok = (
            errors == 0
            and d["lost"] == 0
            and d["duplicated"] == 0
            and not msg["timed_out"]
            and msg["unacked"] == 0
            and result["connections_closed_during_run"] == 0
            and summary["log_errors"] == 0
            and summary["server_alive_at_end"]
        )
    if "growth_pct" in summary:
        s = summary
        w(
            f"* RSS: {s['rss_first_mib']} MiB at the start of the load, "
            f"{s['rss_after_warmup_mib']} MiB after the {opts.warmup_minutes:g}-min warm-up "
            f"(t = {s['warm_from_min']} min), "
            f"{s['rss_end_mib']} MiB at the last sample of the load (t = {s['last_sample_min']} "
            f"min), max {s['rss_max_after_warmup_mib']} MiB, median "
            f"{s['rss_median_after_warmup_mib']} MiB: **growth after warm-up "
            f"{s['growth_pct']}%** (max {s['max_growth_pct']}%)"
        )
        ok = ok and s["growth_pct"] < 10
        series = ", ".join(
            f"{x['min']:.1f}: {x['rss_kb'] / 1024:.1f}"
            for i, x in enumerate(samples)
            if i % 2 == 0 or i == len(samples) - 1
        )
        w(f"* RSS series (minute: MiB, every {2 * opts.sample:g} s): {series}")
    else:
        w(f"* RSS: too few samples after the {opts.warmup_minutes:g}-min warm-up to judge")
        ok = False
    full = opts.minutes >= 30
    w("")
    verdict = "**met**" if ok and full else "**not met**" if not ok else "**not shown**"
    w(
        f"Target (issue 6: 30 min at half of b's rate, RSS growth under 10% after warm-up, no "
        f"errors): {verdict}"
        + ("" if full else f" (this soak ran {opts.minutes:g} min, not 30)")
        + "."
    )
    w(f"Samples and the loadgen JSON: `{workdir.relative_to(run.ROOT)}/soak.json`.")
    w(run.SOAK_END)
    section = "\n".join(lines)
    text = opts.out.read_text() if opts.out.exists() else ""
    if run.SOAK_BEGIN in text and run.SOAK_END in text:
        a = text.index(run.SOAK_BEGIN)
        b = text.index(run.SOAK_END) + len(run.SOAK_END)
        text = text[:a] + section + text[b:]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    opts.out.write_text(text)
    run.log(f"soak: wrote the soak section of {opts.out}")


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        run.log("soak: interrupted; every process it started is stopped")
        sys.exit(130)
