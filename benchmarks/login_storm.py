#!/usr/bin/env python3
"""Does a storm of password logins slow the WebSocket side of the same process?

Issue 11, item 6: a login costs a PBKDF2 hash (about 0.2-0.5 s of CPU with Django's
default hasher), and 30 concurrent logins pushed every WebSocket ack of the same
process to about 90 ms. This starts one real `manage.py serve` with the real default
hasher (tests.live.DaphneServer), logs one WebSocket client in, and measures the
round trip of its Heart events: first with nothing else going on, then while
`--logins` concurrent `POST /api/user/login` run against the same process.

    .venv/bin/python benchmarks/login_storm.py                 # 30 logins, 2 rounds
    .venv/bin/python benchmarks/login_storm.py --logins 60 --rounds 3 --json

Loopback only; the server and its SQLite database live in a temporary directory and
are removed at the end. The per-address login throttle is switched off for the run
(the storm comes from one address on purpose); everything else is as configured.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from websockets.asyncio.client import connect  # noqa: E402

from tests.live import DaphneServer, api, frame  # noqa: E402

PASSWORD = "storm-password"
# Server settings of the run: Django's default hashers (DaphneServer otherwise sets a
# fast one) and no per-address throttle in the way of the storm.
STORM_ENV = {
    "RIM_PASSWORD_HASHERS": "",
    "RIM_THROTTLE_LOGIN": "0",
    "RIM_RATE_LIMIT": "0",
    "RIM_LOG_LEVEL": "WARNING",
}
HEART_INTERVAL = 0.02
ACK_TIMEOUT = 30.0
LOGIN_TIMEOUT = 300.0


@dataclass
class Latencies:
    """Heart round trips, in milliseconds."""

    samples: list[float] = field(default_factory=list)

    def summary(self) -> dict:
        ordered = sorted(self.samples)
        if not ordered:
            return {"count": 0}

        def pct(p: float) -> float:
            return round(ordered[min(len(ordered) - 1, int(p * len(ordered)))], 2)

        return {
            "count": len(ordered),
            "p50": pct(0.50),
            "p95": pct(0.95),
            "p99": pct(0.99),
            "max": round(ordered[-1], 2),
        }


@dataclass
class StormResult:
    idle: dict
    storm: dict
    logins: int
    statuses: dict[int, int]
    storm_seconds: float
    login_p50_s: float
    login_max_s: float


def login_once(base_url: str, account: str) -> tuple[int, float]:
    """One `POST /api/user/login`: (HTTP status, seconds it took)."""
    request = urllib.request.Request(
        f"{base_url}/api/user/login",
        data=json.dumps({"account": account, "password": PASSWORD}).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    started = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=LOGIN_TIMEOUT) as response:
            status = response.status
    except urllib.error.HTTPError as error:
        status = error.code
    return status, time.monotonic() - started


async def heart_round_trips(ws, uid: int, until: asyncio.Event, into: Latencies) -> None:
    """Heart, wait for its ack, pause HEART_INTERVAL; again until `until` is set."""
    while not until.is_set():
        cmid = uuid.uuid4().hex
        sent = time.perf_counter()
        await ws.send(frame("Heart", uid, cmid=cmid))
        while True:
            reply = json.loads(await asyncio.wait_for(ws.recv(), ACK_TIMEOUT))
            if reply.get("clientMsgId") == cmid:
                break
        into.samples.append((time.perf_counter() - sent) * 1000)
        await asyncio.sleep(HEART_INTERVAL)


async def measure(base_url: str, ws_url: str, *, logins: int, idle_seconds: float) -> StormResult:
    """Heart round trips at rest for `idle_seconds`, then during `logins` concurrent
    logins of one account (created here)."""
    account = f"storm{uuid.uuid4().hex[:8]}"
    await asyncio.to_thread(
        api, base_url, "user/create", {"name": "Storm", "account": account, "password": PASSWORD}
    )
    token = await asyncio.to_thread(
        api, base_url, "user/login", {"account": account, "password": PASSWORD}
    )
    uid = (await asyncio.to_thread(api, base_url, f"user/token?token={token}", None, token))["id"]
    async with connect(ws_url, open_timeout=ACK_TIMEOUT) as ws:
        await ws.send(frame("Login", uid, content=token, cmid="login"))
        ack = json.loads(await asyncio.wait_for(ws.recv(), ACK_TIMEOUT))
        if ack.get("content") != "Ok":
            raise RuntimeError(f"WebSocket login refused: {ack}")

        idle, storm, done = Latencies(), Latencies(), asyncio.Event()
        pinger = asyncio.create_task(heart_round_trips(ws, uid, done, idle))
        await asyncio.sleep(idle_seconds)
        done.set()
        await pinger

        done = asyncio.Event()
        pinger = asyncio.create_task(heart_round_trips(ws, uid, done, storm))
        loop = asyncio.get_running_loop()
        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=logins) as pool:
            answers = await asyncio.gather(
                *(loop.run_in_executor(pool, login_once, base_url, account) for _ in range(logins))
            )
        storm_seconds = time.monotonic() - started
        done.set()
        await pinger
    durations = sorted(seconds for _, seconds in answers)
    return StormResult(
        idle=idle.summary(),
        storm=storm.summary(),
        logins=logins,
        statuses=dict(Counter(status for status, _ in answers)),
        storm_seconds=round(storm_seconds, 2),
        login_p50_s=round(statistics.median(durations), 2),
        login_max_s=round(durations[-1], 2),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--logins", type=int, default=30, help="concurrent logins per round")
    parser.add_argument("--rounds", type=int, default=2, help="storms, one after the other")
    parser.add_argument("--idle-seconds", type=float, default=2.0)
    parser.add_argument("--json", action="store_true", help="one JSON line per round")
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="rim-storm-") as workdir,
        DaphneServer(Path(workdir), env=STORM_ENV, name="storm") as server,
    ):
        for round_number in range(1, args.rounds + 1):
            result = asyncio.run(
                measure(
                    server.http_url,
                    server.ws_url,
                    logins=args.logins,
                    idle_seconds=args.idle_seconds,
                )
            )
            if args.json:
                print(json.dumps({"round": round_number, **asdict(result)}))
            else:
                print(
                    f"round {round_number}: Heart ack ms at rest {result.idle}; "
                    f"during {result.logins} logins {result.storm}; "
                    f"login answers {result.statuses} in {result.storm_seconds} s "
                    f"(each p50 {result.login_p50_s} s, max {result.login_max_s} s)"
                )


if __name__ == "__main__":
    main()
