"""Monitoring of a real `manage.py serve` process: /metrics counts what clients did and
is refused to a client behind the proxy without the token; /healthz and /readyz follow
the database and Redis going away and coming back; JSON logs are one object per line
and hold no token.

The embedded-stack server serves the module (SQLite in a directory of its own, which a
test moves away to make the database unreachable); the PostgreSQL + Redis test starts
its own, with a private Redis it kills.
"""

import json
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.conftest import (
    assert_no_token,
    connected,
    create_group,
    cut_database,
    env_for_tests,
    in_thread,
    new_user,
    require_services,
    restore_database,
    server_pool,
    use_token_everywhere,
)
from tests.live import POSTGRES_ADMIN_URL, api, fresh_postgres_database

pytestmark = pytest.mark.e2e

TOKEN = "e2e-metrics-token-fedcba9876543210"
OUTSIDER = "203.0.113.7"
# How long a probe may take to see a dependency go or come back (a few of its own
# timeouts, on a loaded machine).
SETTLE = 20.0


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("monitoring-e2e")
    data = workdir / "daphne" / "data"  # in the server's own directory
    data.mkdir(parents=True)
    env = env_for_tests(
        DATABASE_URL=f"sqlite:///{data / 'db.sqlite3'}",
        RIM_METRICS_TOKEN=TOKEN,
        # As behind an nginx on the same host.
        RIM_TRUSTED_PROXIES="127.0.0.1",
        RIM_LOG_FORMAT="json",
        # As in production: a 404 is the same page whatever the path.
        RIM_DEBUG="0",
        RIM_SECRET_KEY="monitoring-e2e-" + "s" * 40,
    )
    with server_pool(workdir) as pool:
        daphne = pool.new("daphne", env)
        daphne.start()
        yield daphne


def http_get(url: str, headers: dict[str, str] | None = None) -> tuple[int, str, bytes]:
    """(status, content type, body) of a GET, whatever the status."""
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=20) as response:
            return response.status, response.headers["Content-Type"], response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers["Content-Type"], error.read()


def scrape(server, headers: dict[str, str] | None = None) -> dict[tuple, float]:
    """Every sample of /metrics, by (name, sorted labels)."""
    status, content_type, body = http_get(f"{server.http_url}/metrics", headers)
    assert status == 200, body
    assert content_type.startswith("text/plain")
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(body.decode())
        for s in family.samples
    }


def value(samples: dict, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def probe(server, path: str) -> tuple[int, dict]:
    status, content_type, body = http_get(f"{server.http_url}{path}")
    assert content_type == "application/json", body
    return status, json.loads(body)


def wait_for_probe(server, path: str, status: int) -> dict:
    """Probe until `path` answers `status` (within SETTLE seconds); its body."""
    deadline = time.monotonic() + SETTLE
    while True:
        got, body = probe(server, path)
        if got == status:
            return body
        if time.monotonic() > deadline:
            raise AssertionError(f"{path} still answers {got} {body}, not {status}")
        time.sleep(0.2)


async def test_metrics_count_what_clients_did(server):
    """From loopback: REST requests by route and status; WebSocket connections, events,
    acks, ack latency and pushes; database calls and published events."""
    before = await in_thread(scrape, server)
    alice = await in_thread(new_user, server.http_url, "alice")
    bob = await in_thread(new_user, server.http_url, "bob")
    gid = await in_thread(create_group, server.http_url, alice, [bob])
    sender = await connected(server.ws_url, alice)
    receiver = await connected(server.compat_ws_url, bob)
    try:
        ack = await sender.send_msg(gid, "counted")
        assert (await receiver.next_push())["body"]["msgId"] == ack["serverMsgId"]
        during = await in_thread(scrape, server)
    finally:
        for client in (sender, receiver):
            await client.close()

    def grew(name: str, **labels) -> float:
        return value(during, name, **labels) - value(before, name, **labels)

    rest = "rim_rest_requests_total"
    assert grew(rest, route="api/user/create", status="200") == 2
    assert grew(rest, route="api/user/login", status="200") == 2
    assert grew(rest, route="api/group/create", status="200") == 1
    assert grew("rim_ws_events_total", event="Login") == 2
    assert grew("rim_ws_events_total", event="Msg") == 1
    assert grew("rim_ws_acks_total", code="Ok") == 3
    assert grew("rim_ws_ack_seconds_count") == 1  # the Msg's: a database round trip
    assert grew("rim_ws_pushes_total") >= 1
    assert grew("rim_events_published_total", type="chat.entry") == 1
    assert grew("rim_db_wait_seconds_count") >= 4  # two Logins' sessions and syncs, the Msg
    assert value(during, "rim_ws_connections") >= 2
    assert value(during, "rim_ws_logged_in") >= 2


def test_metrics_are_refused_behind_the_proxy_without_the_token(server):
    """Through the (trusted) proxy, a client elsewhere gets the 404 of any unknown
    page, with a wrong token too; with the token it gets the metrics, and so does a
    client on this host."""
    unknown = http_get(f"{server.http_url}/no-such-page")
    assert unknown[0] == 404
    for headers in (
        {"X-Forwarded-For": OUTSIDER},
        {"X-Forwarded-For": f"127.0.0.1, {OUTSIDER}"},
        {"X-Forwarded-For": OUTSIDER, "Authorization": f"Bearer {TOKEN}0"},
        {"X-Forwarded-For": OUTSIDER, "Authorization": f"Basic {TOKEN}"},
    ):
        refused = http_get(f"{server.http_url}/metrics", headers)
        assert refused == unknown, headers
    with_token = {"X-Forwarded-For": OUTSIDER, "Authorization": f"Bearer {TOKEN}"}
    assert ("rim_ws_connections", ()) in scrape(server, with_token)


def test_healthz_and_readyz_follow_the_database(server):
    """The SQLite file's directory goes away: /readyz answers 503 naming the database,
    /healthz still 200; it comes back: 200 again."""
    assert probe(server, "/healthz") == (200, {"status": "ok"})
    ready = {"status": "ready", "checks": {"database": "ok"}}
    assert probe(server, "/readyz") == (200, ready)

    data = server.workdir / "data"
    data.rename(server.workdir / "away")
    try:
        body = wait_for_probe(server, "/readyz", 503)
        assert body == {"status": "unavailable", "checks": {"database": "OperationalError"}}
        assert probe(server, "/healthz") == (200, {"status": "ok"})
    finally:
        (server.workdir / "away").rename(data)
    assert wait_for_probe(server, "/readyz", 200) == ready
    log = server.log_text()
    assert '"event": "ready_check_failed"' in log and '"dependency": "database"' in log
    assert "Service Unavailable" not in log  # one line per failed check, not two


async def test_json_logs_are_one_object_per_line_without_tokens(server):
    """With RIM_LOG_FORMAT=json every line the server writes is a JSON record, rim's
    event pairs are fields, and a session that used its token everywhere left no trace
    of it."""
    alice = await use_token_everywhere(server)
    log = server.log_text()
    assert_no_token(log, alice.token)
    # Lines the test harness writes between the server's starts are not the server's.
    lines = [line for line in log.splitlines() if line and not line.startswith("--- start")]
    records = [json.loads(line) for line in lines]
    for record in records:
        assert {"time", "level", "logger", "message"} <= set(record), record
    events = {(r.get("event"), r.get("uid"), r.get("code")) for r in records}
    assert ("ws_login", str(alice.uid), None) in events
    assert ("ws_error", "None", "auth_failed") in events
    assert any(r.get("event") == "serving" and r["logger"] == "rim.serve" for r in records)


@pytest.mark.services
def test_readyz_follows_redis_and_postgres(tmp_path, private_redis):
    """A server on PostgreSQL and a private Redis: ready; Redis killed → 503 naming
    Redis while /healthz stays 200; Redis back → ready; the database refusing
    connections → 503 naming the database; back → ready."""
    require_services()
    with fresh_postgres_database() as database_url, server_pool(tmp_path) as pool:
        server = pool.new(
            "daphne", env_for_tests(DATABASE_URL=database_url, REDIS_URL=private_redis.url)
        )
        server.start()
        both = {"status": "ready", "checks": {"database": "ok", "redis": "ok"}}
        assert probe(server, "/readyz") == (200, both)

        private_redis.kill()
        body = wait_for_probe(server, "/readyz", 503)
        assert body["status"] == "unavailable"
        assert body["checks"] == {"database": "ok", "redis": "ConnectionError"}
        assert probe(server, "/healthz") == (200, {"status": "ok"})
        private_redis.start()
        assert wait_for_probe(server, "/readyz", 200) == both

        database = database_url.rsplit("/", 1)[1]
        cut_database(database, refuse_new=True)
        try:
            body = wait_for_probe(server, "/readyz", 503)
            assert body["checks"] == {"database": "OperationalError", "redis": "ok"}
            assert probe(server, "/healthz") == (200, {"status": "ok"})
        finally:
            restore_database(database)
        assert wait_for_probe(server, "/readyz", 200) == both


@pytest.mark.services
def test_readyz_does_not_wait_for_a_busy_pool(tmp_path):
    """Every pooled connection is taken (two logins stuck behind a table lock): the
    process is saturated, not unready, and /readyz answers 200 at once instead of
    queueing for the pool."""
    require_services()
    with fresh_postgres_database() as database_url, server_pool(tmp_path) as pool:
        env = env_for_tests(
            DATABASE_URL=database_url,
            RIM_DB_POOL_MIN="1",
            RIM_DB_POOL_MAX="2",
            RIM_DB_WORKERS="1",  # idle here: no WebSocket, its connection stays in the pool
            RIM_DB_POOL_TIMEOUT="30",
            RIM_READY_TIMEOUT="5",
        )
        server = pool.new("daphne", env)
        server.start()
        alice = new_user(server.http_url, "alice")
        login = {"account": alice.account, "password": "secret-pw"}
        with psycopg.connect(database_url) as locker, ThreadPoolExecutor(2) as clients:
            locker.execute("LOCK TABLE accounts_user IN ACCESS EXCLUSIVE MODE")
            stuck = [clients.submit(api, server.http_url, "user/login", login) for _ in range(2)]
            try:
                wait_for_lock_waiters(database_url.rsplit("/", 1)[1], 2)
                started = time.monotonic()
                ready = {"status": "ready", "checks": {"database": "ok"}}
                assert probe(server, "/readyz") == (200, ready)
                assert time.monotonic() - started < 5
            finally:
                locker.rollback()  # the lock goes, the logins finish
            for login_answer in stuck:
                assert isinstance(login_answer.result(timeout=30), str)


def wait_for_lock_waiters(database: str, count: int) -> None:
    """Until `count` connections to `database` wait for a lock."""
    deadline = time.monotonic() + SETTLE
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
        while True:
            (waiting,) = admin.execute(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = %s AND wait_event_type = 'Lock'",
                (database,),
            ).fetchone()
            if waiting >= count:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"{waiting} of {count} connections wait for the lock")
            time.sleep(0.05)
