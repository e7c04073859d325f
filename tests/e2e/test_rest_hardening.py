"""Issue 11's REST hardening against real `manage.py serve` processes: the envelope for
every answer under /api/ (what Twisted, daphne and Django do before the views is part
of the wire), the per-address throttle and the failed-login lock, and, on PostgreSQL
and Redis, the same counts across two processes and logins that keep working when
Redis is gone."""

import http.client
import json
import time
import uuid

import pytest

from tests.e2e.conftest import env_for_tests, require_services, server_pool
from tests.live import ApiError, api, fresh_postgres_database

pytestmark = pytest.mark.e2e

MAX_BODY = 4096
PASSWORD = "secret-pw"  # tests.live.register's


def exchange(port: int, method: str, path: str, body: bytes = b"", **headers):
    """(status, headers, body) of one request on a fresh connection."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request(method, path, body=body or None, headers=headers)
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def envelope_of(answer, status: int) -> dict:
    got, headers, body = answer
    assert got == status, body[:300]
    assert headers["Content-Type"] == "application/json", headers
    envelope = json.loads(body)
    assert envelope == {"ok": False, "code": status, "msg": envelope["msg"], "data": None}
    return envelope


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """Trusts X-Forwarded-For from loopback: each test logs in from addresses of its
    own, so that the tests' login counts never meet."""
    with server_pool(tmp_path_factory.mktemp("rest-hardening")) as pool:
        daphne = pool.new(
            "daphne",
            env_for_tests(
                RIM_MAX_BODY=str(MAX_BODY),
                RIM_TRUSTED_PROXIES="127.0.0.1",
                RIM_THROTTLE_LOGIN="3/min",
                RIM_LOGIN_FAILURES="2",
                RIM_LOGIN_LOCKOUT="2",
            ),
        )
        daphne.start()
        yield daphne


def new_account(server) -> str:
    account = f"u{uuid.uuid4().hex[:8]}"
    api(server.http_url, "user/create", {"name": "U", "account": account, "password": PASSWORD})
    return account


def login_from(server, address: str, account: str, password: str = PASSWORD):
    body = json.dumps({"account": account, "password": password}).encode()
    headers = {"Content-Type": "application/json", "X-Forwarded-For": address}
    return exchange(server.port, "POST", "/api/user/login", body, **headers)


MULTIPART = (
    b'--rimboundary\r\nContent-Disposition: form-data; name="account"\r\n\r\nalice\r\n'
    b"--rimboundary--\r\n"
)


def test_multipart_post_to_an_unknown_route_is_the_envelopes_404(server):
    answer = exchange(
        server.port,
        "POST",
        "/api/no/such/route",
        MULTIPART,
        **{"Content-Type": "multipart/form-data; boundary=rimboundary"},
    )
    assert envelope_of(answer, 404)["msg"] == "invalid request"


@pytest.mark.parametrize(
    ("method", "path", "content_type", "status"),
    [
        ("POST", "/api/no/such/route", "application/json", 404),
        ("DELETE", "/api/no/such/route", "text/plain", 404),
        ("OPTIONS", "/api/no/such/route", None, 404),
        ("POST", "/api", "application/json", 404),
        ("PUT", "/api/user/login", "application/json", 405),
        ("OPTIONS", "/api/user/login", None, 405),
        ("POST", "/api/user/create", "multipart/form-data; boundary=rimboundary", 415),
        ("POST", "/api/user/create", "text/plain", 415),
    ],
)
def test_every_answer_under_api_is_the_envelope(server, method, path, content_type, status):
    headers = {"Content-Type": content_type} if content_type else {}
    envelope_of(exchange(server.port, method, path, MULTIPART, **headers), status)


MALFORMED = b"--rimboundary\r\nthis is no part header\r\n"


@pytest.mark.parametrize(
    ("path", "status"), [("/api/user/create", 415), ("/api/no/such/route", 404)]
)
def test_a_malformed_multipart_body_is_answered_by_the_application(server, path, status):
    """rim's server does not let Twisted parse form bodies (daphne never reads what it
    parses, and Twisted answered a malformed one with an empty 400 of its own)."""
    answer = exchange(
        server.port,
        "POST",
        path,
        MALFORMED,
        **{"Content-Type": "multipart/form-data; boundary=rimboundary"},
    )
    envelope_of(answer, status)


def test_a_body_over_rim_max_body_is_413(server):
    account = f"big{uuid.uuid4().hex[:8]}"
    payload = json.dumps(
        {"name": "Big", "account": account, "password": PASSWORD, "pad": "x" * MAX_BODY}
    ).encode()
    answer = exchange(
        server.port, "POST", "/api/user/create", payload, **{"Content-Type": "application/json"}
    )
    assert envelope_of(answer, 413)["msg"] == f"request body over {MAX_BODY} bytes"
    assert login_from(server, "192.0.2.10", account)[0] == 401


@pytest.mark.parametrize(("path", "status"), [("/api/user/get?uid=1", 401), ("/api/nope", 404)])
def test_head_answers_the_status_as_json_without_a_body(server, path, status):
    got, headers, body = exchange(server.port, "HEAD", path)
    assert (got, headers["Content-Type"], body) == (status, "application/json", b"")


def test_a_host_not_allowed_is_400_in_the_envelope(server):
    envelope_of(exchange(server.port, "GET", "/api/user/get", Host="evil.example"), 400)


def test_logins_over_the_address_rate_are_429_with_retry_after(server):
    account = new_account(server)
    for _ in range(3):
        assert login_from(server, "192.0.2.20", account)[0] == 200
    answer = login_from(server, "192.0.2.20", account)
    assert envelope_of(answer, 429)["msg"].startswith("too many requests: try again in")
    assert 1 <= int(answer[1]["Retry-After"]) <= 60
    # Another client behind the same proxy has a count of its own.
    assert login_from(server, "192.0.2.21", account)[0] == 200


def test_failed_logins_lock_the_account_then_the_lock_ends(server):
    account = new_account(server)
    assert login_from(server, "192.0.2.30", account, "nope!")[0] == 401
    assert login_from(server, "192.0.2.31", account, "nope!")[0] == 401
    answer = login_from(server, "192.0.2.32", account)
    assert envelope_of(answer, 429)["msg"].startswith("too many failed logins")
    assert answer[1]["Retry-After"] == "2"
    time.sleep(2.2)
    assert login_from(server, "192.0.2.33", account)[0] == 200


@pytest.mark.services
def test_throttles_and_locks_hold_across_processes_and_let_logins_through_without_redis(
    tmp_path, private_redis
):
    require_services()
    with fresh_postgres_database() as database_url, server_pool(tmp_path) as pool:
        env = env_for_tests(
            DATABASE_URL=database_url,
            REDIS_URL=private_redis.url,
            RIM_THROTTLE_REGISTER="3/hour",
            RIM_THROTTLE_LOGIN="100/min",
            RIM_LOGIN_FAILURES="2",
        )
        a, b = pool.new("a", env), pool.new("b", env)
        a.start()
        b.migrated = True
        b.start()

        accounts = [f"x{uuid.uuid4().hex[:8]}" for _ in range(3)]
        for account, server in zip(accounts, (a, b, a), strict=True):
            api(
                server.http_url,
                "user/create",
                {"name": "X", "account": account, "password": PASSWORD},
            )
        with pytest.raises(ApiError) as throttled:
            api(b.http_url, "user/create", {"name": "X", "account": "x4", "password": PASSWORD})
        assert throttled.value.status == 429

        for server in (a, b):
            with pytest.raises(ApiError):
                api(server.http_url, "user/login", {"account": accounts[0], "password": "nope!"})
        with pytest.raises(ApiError) as locked:
            api(a.http_url, "user/login", {"account": accounts[0], "password": PASSWORD})
        assert locked.value.status == 429
        assert locked.value.body["msg"].startswith("too many failed logins")

        private_redis.kill()
        for server in (a, b):
            assert api(
                server.http_url, "user/login", {"account": accounts[1], "password": PASSWORD}
            )
        logs = a.log_text() + b.log_text()
        assert "event=throttle_unavailable" in logs and "event=lockout_unavailable" in logs
