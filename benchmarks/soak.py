#!/usr/bin/env python3
"""Soak test of issues 6 and 11: scenario b's workload paced at half of b's measured
rate for a long time, with the hostile mix of issue 11 beside it (benchmarks/hostile.py:
5% slow readers that never read their socket, 5% flooders past the rate limit, a
stream of connections that never log in), on one fresh server started as
`benchmarks/run.py` starts one (pinned to core 0; the clients on core 1), but with the
server's default rate limit. It samples the server's RSS and CPU every `--sample`
seconds and writes the soak section of benchmarks/RESULTS.md.

    .venv/bin/python benchmarks/soak.py --minutes 30                 # hostile (default)
    .venv/bin/python benchmarks/soak.py --minutes 30 --no-hostile    # issue 6's soak
    .venv/bin/python benchmarks/soak.py --minutes 2 --tree /work/main --out /tmp/soak.md

Without --rate it takes half of scenario b's median on the embedded stack from
benchmarks/RESULTS.md. Targets: flat RSS (under 10% growth after the warm-up), no lost
or duplicated deliveries and no errors for the well-behaved clients; with the hostile
mix also exactly one answer per frame for every client the server did not close, and
every connection without a Login closed with 4002 by the login deadline.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
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

HOSTILE = run.BENCH / "hostile.py"
USERS = 100
DEFAULT_RATE_LIMIT = 50.0  # rimsite/settings.py's RIM_RATE_LIMIT


def rate_from_results(path: Path) -> float:
    for line in path.read_text().splitlines():
        # The sitting's table ("| b | embedded | 2,765 |"), else issue 6's ("| b | 2,765 |").
        m = re.match(r"\|\s*b\s*\|\s*(?:embedded\s*\|\s*)?([\d,\.]+)", line)
        if m:
            return float(m.group(1).replace(",", "")) / 2
    raise SystemExit(f"soak: no scenario b row in {path}; pass --rate")


def parse_args():
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--rate", type=float, help="total msgs/s (default: half of b's median)")
    ap.add_argument("--minutes", type=float, default=30.0, help="load duration")
    ap.add_argument("--warmup-minutes", type=float, default=5.0)
    ap.add_argument("--sample", type=float, default=30.0, help="RSS sampling interval, s")
    ap.add_argument(
        "--hostile",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="the hostile mix of issue 11 beside the load, at the default rate limit",
    )
    ap.add_argument("--stack", choices=("embedded", "production"), default="embedded")
    ap.add_argument("--tree", type=Path, help="run the server from this checkout")
    ap.add_argument("--redis-url", default=run.REDIS_URL, help="Redis of the production stack")
    ap.add_argument("--out", type=Path, default=run.RESULTS)
    ap.add_argument("--no-pin", action="store_true")
    ap.add_argument(
        "hostile_args", nargs=argparse.REMAINDER, help="after --: options of hostile.py"
    )
    opts = ap.parse_args()
    opts.rate = opts.rate or rate_from_results(opts.out)
    if not 1 <= opts.rate <= 100_000 or not 0 < opts.minutes <= 55:
        ap.error("--rate within 1..100000, --minutes within (0, 55]")
    opts.hostile_args = [a for a in opts.hostile_args if a != "--"]
    opts.rate_limit = float(os.environ.get("RIM_RATE_LIMIT") or DEFAULT_RATE_LIMIT)
    if opts.hostile and opts.rate_limit > 0 and opts.rate / USERS > 0.8 * opts.rate_limit:
        ap.error(
            f"{opts.rate:g} msgs/s is {opts.rate / USERS:g}/s per connection: the well-behaved "
            f"clients must stay under the server's rate limit ({opts.rate_limit:g}/s); "
            "lower --rate"
        )
    if not run.loopback_url(opts.redis_url):
        ap.error(f"{opts.redis_url}: loopback only")
    opts.tree = run.Tree.at(opts.tree)
    return opts


def main() -> int:
    opts = parse_args()
    msgs_per_user = max(1, round(opts.rate * opts.minutes * 60 / USERS))
    signal.signal(signal.SIGINT, signal.default_int_handler)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, run.on_signal)
    run.raise_nofile()
    out_root = run.BENCH / "out"
    out_root.mkdir(exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix=time.strftime("soak-%Y%m%d-%H%M%S-"), dir=out_root))
    run.log(f"soak: logs under {workdir}; server from {opts.tree.root}")
    pin_srv, pin_lg = run.pinning() if not opts.no_pin else ([], [])
    started = datetime.datetime.now(datetime.UTC)
    revision = opts.tree.revision()  # the revision the server runs, not the one at the end
    samples: list[dict] = []
    json_path = workdir / "result.json"
    # The hostile soak runs at the server's own rate limit (app default or RIM_* env).
    settings = {"RIM_RATE_LIMIT": None} if opts.hostile else None
    try:
        with contextlib.ExitStack() as stack:
            services = stack.enter_context(run.open_stack(opts.stack, workdir, opts.redis_url))
            server = run.Server(workdir, opts.tree, services, pin_srv, settings)
            stack.callback(server.close)
            loadgen_args = server.loadgen_args(
                json_path,
                [
                    "--scenario",
                    "b",
                    "--rate",
                    f"{opts.rate:g}",
                    "--msgs-per-user",
                    str(msgs_per_user),
                    "--timeout",
                    str(int(opts.minutes * 60 + 600)),
                    "--drain",
                    "60",
                ],
            )
            if opts.hostile:
                cmd = [*pin_lg, run.PYTHON, str(HOSTILE), *opts.hostile_args, "--", *loadgen_args]
            else:
                cmd = [*pin_lg, run.PYTHON, str(run.LOADGEN), *loadgen_args]
            commands = [*services.commands, *server.commands, run.show_cmd({}, cmd)]
            run.log(f"soak: {shlex.join(cmd)}")
            env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
            lg = run.spawn(cmd, env, workdir / "loadgen.log")
            samples = sample_rss(lg, server.pid, workdir / "loadgen.log", opts)
            run.stop(lg)
            server_alive = server.proc.poll() is None
    finally:
        run.stop_all()

    result = json.loads(json_path.read_text()) if json_path.exists() else None
    summary = summarize(opts, samples, result, workdir, server_alive)
    (workdir / "soak.json").write_text(
        json.dumps({"summary": summary, "samples": samples, "result": result}, indent=1)
    )
    run.log(f"soak: {json.dumps(summary)}")
    write_section(opts, summary, result, samples, commands, started, workdir, revision)
    return 0


def sample_rss(lg, pid: int, lg_log: Path, opts) -> list[dict]:
    """RSS and CPU of the server every `--sample` s from the start of the load until the
    client process ends (bounded)."""
    samples = []
    limit = time.monotonic() + opts.minutes * 60 + 900
    t_load = None
    next_sample = time.monotonic()
    while lg.poll() is None and time.monotonic() < limit:
        if t_load is None and b"load: start" in lg_log.read_bytes():
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
    return samples


def summarize(opts, samples: list[dict], result: dict | None, workdir: Path, alive) -> dict:
    server_log = (workdir / "server.log").read_text(errors="replace")
    # The load ends with the last ack; samples after it (the drain) are not load.
    load_min = (result or {}).get("ack_span_s") or opts.minutes * 60
    load_samples = [s for s in samples if s["min"] * 60 <= load_min + 1] or samples
    warm = [s for s in load_samples if s["min"] >= opts.warmup_minutes]
    summary = {
        "rate": opts.rate,
        "minutes_planned": opts.minutes,
        "hostile": opts.hostile,
        "samples": len(load_samples),
        "server_alive_at_end": alive,
        "log_errors": len(re.findall(r" (ERROR|CRITICAL) |Traceback", server_log)),
        # The first few, without their timestamps, for the report.
        "log_error_lines": list(
            dict.fromkeys(
                line.split(" ", 2)[-1][:160]
                for line in server_log.splitlines()
                if re.search(r" (ERROR|CRITICAL) ", line)
            )
        )[:3],
        "log_warnings": len(re.findall(r" WARNING ", server_log)),
    }
    if warm:
        base, end = warm[0]["rss_kb"], warm[-1]["rss_kb"]
        peak = max(s["rss_kb"] for s in warm)
        summary.update(
            {
                "rss_first_mib": round(load_samples[0]["rss_kb"] / 1024, 1),
                "rss_after_warmup_mib": round(base / 1024, 1),
                "rss_end_mib": round(end / 1024, 1),
                "rss_max_after_warmup_mib": round(peak / 1024, 1),
                "rss_median_after_warmup_mib": round(
                    statistics.median(s["rss_kb"] for s in warm) / 1024, 1
                ),
                "growth_pct": round(100 * (end - base) / base, 1),
                "max_growth_pct": round(100 * (peak - base) / base, 1),
                "warm_from_min": warm[0]["min"],
                "last_sample_min": warm[-1]["min"],
            }
        )
    return summary


def closes(d: dict) -> str:
    return ", ".join(f"{k}: {v}" for k, v in sorted(d.items())) or "none"


def hostile_lines(h: dict, rate_limit: float) -> tuple[list[str], list[tuple[str, bool]]]:
    """The report's lines on the hostile clients, and issue 11's checks on them."""
    sr, fl, nl = h["slow_readers"], h["flooders"], h["no_login"]
    lines = [
        f"* server rate limit: {rate_limit:g} events/s per connection "
        "(`RIM_RATE_LIMIT`, the app's default unless set in the environment)",
        f"* slow readers: {sr['sessions']} sessions; closed by the server, by close code "
        f"(what the final read saw): {closes(sr['closes'])}, after (s) p50 "
        f"{sr['closed_after_s']['p50']}, max {sr['closed_after_s']['max']}; open at the end: "
        f"{sr['open_at_end']}; {sr['hearts']} Hearts sent; final read: "
        f"{sr['pushes_read']:,} pushes, {sr['bytes_read'] / 1048576:.1f} MiB; answers: "
        f"{sr['answers']}; failed opens: {sr['open_failures'] or 0}",
        f"* flooders: {fl['sessions']} sessions, {fl['frames']:,} Msg frames; answers by code: "
        f"{closes(fl['answers_by_code'])}; closes by code: {closes(fl['closes'])}; open at "
        f"the end: {fl['open_at_end']}; answers: {fl['answers']}; failed opens: "
        f"{fl['open_failures'] or 0}",
        f"* connections without Login: {nl['opened']:,} opened; closes by code: "
        f"{closes(nl['closes'])}; closed after (s) p50 {nl['close_after_s']['p50']}, max "
        f"{nl['close_after_s']['max']}; not closed {h['login_timeout_s']:g} s + grace after "
        f"opening: {nl['not_closed_in_time']}; frames received: {nl['frames_received']}; "
        f"failed opens: {nl['open_failures'] or 0}",
        f"* hostile clients' own errors: {h['task_errors'] or 'none'}; tasks cancelled at "
        f"the end: {h['tasks_cancelled']}",
    ]
    answers = [sr["answers"], fl["answers"]]
    limit = h["login_timeout_s"]
    late = [v for v in (nl["close_after_s"]["max"],) if v is not None and v > limit + 5]
    checks = [
        (
            "exactly one answer per frame for every hostile client the server did not close "
            "(none missing, none extra or unknown)",
            all(a["missing"] == 0 and a["extra"] == 0 and a["unknown"] == 0 for a in answers),
        ),
        (
            f"every connection without a Login closed with 4002 within {limit:g} s + 5 s",
            nl["opened"] > 0
            and set(nl["closes"]) == {"4002"}
            and nl["not_closed_in_time"] == 0
            and not late,
        ),
        (
            "flooders refused with rate_limited",
            fl["answers_by_code"].get("rate_limited", 0) > 0,
        ),
        ("no errors in the hostile clients", not h["task_errors"]),
    ]
    return lines, checks


def write_section(opts, summary, result, samples, commands, started, workdir, revision) -> None:
    lines = [
        run.SOAK_BEGIN,
        "## Soak" + (" with the hostile mix (issue 11)" if opts.hostile else ""),
    ]
    w = lines.append
    end = datetime.datetime.now(datetime.UTC)
    w("")
    w(
        f"{started:%Y-%m-%d %H:%M}-{end:%H:%M} UTC, server code: git commit "
        f"{run.revision_text(revision)}. One fresh server on the {opts.stack} stack (as in "
        f"run.py{', but at the default rate limit' if opts.hostile else ''}), scenario b's "
        f"workload paced at **{summary['rate']:g} msgs/s** ({summary['rate'] / USERS:g} per "
        f"connection) for {opts.minutes:g} min planned"
        + (", with the hostile mix of benchmarks/hostile.py beside it" if opts.hostile else "")
        + f"; server RSS sampled every {opts.sample:g} s from the start of the load."
    )
    w("")
    w("```sh")
    w(shlex.join([os.path.relpath(run.PYTHON, run.ROOT), "benchmarks/soak.py", *sys.argv[1:]]))
    w("# which ran:")
    w("\n".join(commands))
    w("```")
    w("")
    checks: list[tuple[str, bool]] = []
    if result is None:
        w("**No result**: the load generator wrote no JSON (see its log).")
        checks.append(("a result", False))
    else:
        msg, d = result["messages"], result["deliveries"]
        span = result.get("ack_span_s") or 0
        errors = sum(msg["errors"].values())
        w("Well-behaved clients (loadgen):")
        w("")
        w(
            f"* load: {span / 60:.1f} min from first send to last ack; {msg['acked_ok']:,} of "
            f"{msg['planned']:,} messages acked, {result['acked_msgs_per_s']} acked msgs/s; "
            f"ack p50 / p99 {result['ack_latency_ms']['p50']} / "
            f"{result['ack_latency_ms']['p99']} ms; delivery p50 / p99 "
            f"{result['delivery_latency_ms']['p50']} / {result['delivery_latency_ms']['p99']} ms"
        )
        w(
            f"* deliveries: {d['expected']:,} expected, {d['received']:,} received, "
            f"**{d['lost']} lost, {d['duplicated']} duplicated**, {d['out_of_order']} out of "
            f"order; {d['foreign_pushes']:,} pushes of other clients' messages (flooders)"
        )
        w(
            f"* errors: non-Ok acks {errors} {msg['errors'] or ''}; unacked "
            f"{msg['unacked']}; answers matching no frame {result['unmatched_acks']}; "
            f"connections closed by the server {result['connections_closed_during_run']} "
            f"{result['close_reasons'] or ''}; load phase timed out: {msg['timed_out']}; "
            f"server log: {summary['log_errors']} ERROR/Traceback, "
            f"{summary['log_warnings']} WARNING lines; server alive at the end: "
            f"{summary['server_alive_at_end']}"
        )
        srv = result.get("server") or {}
        w(
            f"* server CPU {srv.get('cpu_pct_of_one_core')}% of a core; client process "
            f"{result['loadgen']['cpu_pct_of_one_core']}%; other processes "
            f"{result['machine']['other_processes_pct_of_one_core']}% of a core"
        )
        checks.append(
            (
                "well-behaved clients: 0 lost, 0 duplicated, every frame answered Ok exactly "
                "once, none closed, none timed out",
                errors == 0
                and d["lost"] == 0
                and d["duplicated"] == 0
                and not msg["timed_out"]
                and msg["unacked"] == 0
                and result["unmatched_acks"] == 0
                and result["connections_closed_during_run"] == 0,
            )
        )
        for line in summary["log_error_lines"]:
            w(f"  * server log: `{line}`")
        checks.append(
            (
                "server: alive at the end, no ERROR or Traceback in its log",
                summary["log_errors"] == 0 and summary["server_alive_at_end"],
            )
        )
        if opts.hostile:
            h = result.get("hostile")
            w("")
            w("Hostile clients (benchmarks/hostile.py):")
            w("")
            if h is None:
                w("* **no hostile section in the result**")
                checks.append(("the hostile mix ran", False))
            else:
                more, hostile_checks = hostile_lines(h, opts.rate_limit)
                lines.extend(more)
                checks.extend(hostile_checks)
    w("")
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
        checks.insert(0, ("RSS flat: growth after the warm-up under 10%", s["growth_pct"] < 10))
        series = ", ".join(
            f"{x['min']:.1f}: {x['rss_kb'] / 1024:.1f}"
            for i, x in enumerate(samples)
            if i % 2 == 0 or i == len(samples) - 1
        )
        w(f"* RSS series (minute: MiB, every {2 * opts.sample:g} s): {series}")
    else:
        w(f"* RSS: too few samples after the {opts.warmup_minutes:g}-min warm-up to judge")
        checks.insert(0, ("RSS flat: growth after the warm-up under 10%", False))
    w("")
    w("| check | |")
    w("|---|---|")
    for text, ok in checks:
        w(f"| {text} | {'**met**' if ok else '**not met**'} |")
    full = opts.minutes >= 30
    ok = all(ok for _, ok in checks)
    w("")
    verdict = "**met**" if ok and full else "**not met**" if not ok else "**not shown**"
    w(
        f"Target (issue {'11' if opts.hostile else '6'}: 30 min at half of b's rate, every "
        f"check above met): {verdict}"
        + ("" if full else f" (this soak ran {opts.minutes:g} min, not 30)")
        + "."
    )
    w(f"Samples and the client JSON: `{os.path.relpath(workdir, run.ROOT)}/soak.json`.")
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
