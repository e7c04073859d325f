"""Monitoring in one process (infra.monitoring): who may read /metrics, what it and
the REST counter count, /healthz and /readyz, and the settings they read. Real
server processes: tests/e2e/test_e2e_monitoring.py."""

import asyncio
import json
import logging
import subprocess
import sys
import threading

import pytest
from django.http import HttpResponse
from django.test import AsyncClient, RequestFactory
from prometheus_client.parser import text_string_to_metric_families

from infra import monitoring
from tests import ws_helpers
from tests.live import ROOT

connect_fixture = ws_helpers.connect_fixture

TOKEN = "metrics-token-0123456789abcdef"
OUTSIDER = "203.0.113.9"
# Every family infra.metrics defines (counters under their exposition names).
RIM_FAMILIES = {
    "rim_ws_connections",
    "rim_ws_logged_in",
    "rim_ws_events",
    "rim_ws_acks",
    "rim_ws_ack_seconds",
    "rim_ws_pushes",
    "rim_ws_repairs",
    "rim_ws_closes",
    "rim_events_published",
    "rim_layer_drops",
    "rim_db_queue_depth",
    "rim_db_wait_seconds",
    "rim_rest_requests",
}


def get(path: str = "/metrics", remote: str = "127.0.0.1", **headers):
    return RequestFactory().get(path, REMOTE_ADDR=remote, headers=headers)


@pytest.fixture
def metrics_token(settings):
    settings.RIM_METRICS_TOKEN = TOKEN


# -- who may read /metrics -----------------------------------------------------------


@pytest.mark.parametrize("remote", ["127.0.0.1", "127.3.2.1", "::1", "::ffff:127.0.0.1"])
def test_metrics_are_readable_from_loopback(remote):
    assert monitoring.may_read_metrics(get(remote=remote))


@pytest.mark.parametrize("remote", [OUTSIDER, "10.0.0.5", "::ffff:10.0.0.5", "2001:db8::1", ""])
def test_metrics_are_refused_to_other_peers_without_a_token(remote, metrics_token):
    assert not monitoring.may_read_metrics(get(remote=remote))


@pytest.mark.parametrize(
    "header", [("x-forwarded-for", OUTSIDER), ("x-real-ip", OUTSIDER), ("forwarded", "for=x")]
)
def test_a_request_relayed_by_a_proxy_rim_does_not_trust_is_not_local(header, settings):
    """An nginx on this host connects from loopback: without RIM_TRUSTED_PROXIES,
    whatever it relays must not pass for a local client."""
    settings.RIM_TRUSTED_PROXIES = frozenset()
    name, value = header
    assert not monitoring.may_read_metrics(get(**{name: value}))


@pytest.mark.parametrize(
    ("forwarded_for", "readable"),
    [
        (OUTSIDER, False),
        # The client wrote the first hop itself; the proxy appended the real one.
        (f"127.0.0.1, {OUTSIDER}", False),
        ("10.0.0.7", False),
        # A proxy elsewhere that rim trusts, relaying a client on this host.
        ("::1", True),
    ],
)
def test_through_a_trusted_proxy_the_client_it_names_decides(settings, forwarded_for, readable):
    settings.RIM_TRUSTED_PROXIES = frozenset({"10.0.0.2"})
    request = get(remote="10.0.0.2", x_forwarded_for=forwarded_for)
    assert monitoring.may_read_metrics(request) is readable


def test_through_a_trusted_proxy_on_this_host_an_outsider_is_refused(settings):
    settings.RIM_TRUSTED_PROXIES = frozenset({"127.0.0.1"})
    assert not monitoring.may_read_metrics(get(x_forwarded_for=OUTSIDER))


@pytest.mark.parametrize("authorization", [f"Bearer {TOKEN}", f"bearer {TOKEN}"])
def test_the_token_opens_metrics_from_anywhere(metrics_token, settings, authorization):
    settings.RIM_TRUSTED_PROXIES = frozenset({"127.0.0.1"})
    assert monitoring.may_read_metrics(get(remote=OUTSIDER, authorization=authorization))
    assert monitoring.may_read_metrics(get(x_forwarded_for=OUTSIDER, authorization=authorization))


@pytest.mark.parametrize(
    "authorization",
    [f"Bearer {TOKEN}x", f"Bearer {TOKEN[:-1]}", f"Basic {TOKEN}", TOKEN, "Bearer", "Bearer "],
)
def test_a_wrong_token_is_refused(metrics_token, authorization):
    assert not monitoring.may_read_metrics(get(remote=OUTSIDER, authorization=authorization))


def test_without_a_configured_token_an_empty_bearer_is_refused(settings):
    settings.RIM_METRICS_TOKEN = ""
    assert not monitoring.may_read_metrics(get(remote=OUTSIDER, authorization="Bearer "))


async def passed_on(request) -> HttpResponse:
    return HttpResponse("passed on", status=418)


@pytest.mark.parametrize("method", ["get", "head"])
async def test_middleware_answers_metrics_to_loopback_and_passes_other_requests_on(method):
    middleware = monitoring.MonitoringEndpoints(passed_on)
    answered = await middleware(getattr(RequestFactory(), method)("/metrics"))
    assert answered.status_code == 200
    refused = RequestFactory().get("/metrics", REMOTE_ADDR=OUTSIDER)
    assert (await middleware(refused)).status_code == 418
    for request in (RequestFactory().post("/metrics"), RequestFactory().get("/metrics/")):
        assert (await middleware(request)).status_code == 418


# -- /metrics through the whole stack ------------------------------------------------


def families(body: bytes) -> dict:
    return {family.name: family for family in text_string_to_metric_families(body.decode())}


def sample(found: dict, family: str, name: str, **labels) -> float:
    """The value of one sample (0 when the family has none with these labels)."""
    for candidate in found[family].samples:
        if candidate.name == name and candidate.labels == labels:
            return candidate.value
    return 0.0


async def scrape(**headers) -> dict:
    response = await AsyncClient().get("/metrics", headers=headers)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain")
    assert "no-store" in response["Cache-Control"]
    return families(response.content)


@pytest.mark.django_db(transaction=True)
async def test_metrics_count_the_websocket_events_and_rest_requests_made(connect):
    """Scraped from loopback over the ASGI application: every rim family is there, and
    a WebSocket frame and a REST request made here are counted."""
    before = await scrape()
    assert set(before) >= RIM_FAMILIES
    assert {"process_cpu_seconds", "python_gc_objects_collected"} <= set(before)

    client = await connect()
    await client.assert_open()  # a Heart, acked Ok
    login = await AsyncClient().post("/api/user/login", {}, content_type="application/json")
    assert login.status_code == 400

    after = await scrape()

    def grew(family: str, name: str, **labels) -> float:
        return sample(after, family, name, **labels) - sample(before, family, name, **labels)

    assert grew("rim_ws_events", "rim_ws_events_total", event="Heart") == 1
    assert grew("rim_ws_acks", "rim_ws_acks_total", code="Ok") == 1
    assert grew("rim_ws_connections", "rim_ws_connections") == 1
    route = {"route": "api/user/login", "status": "400"}
    assert grew("rim_rest_requests", "rim_rest_requests_total", **route) == 1
    # Counters without labels are exported from the start, at 0 if need be.
    assert [s.name for s in before["rim_ws_pushes"].samples] == ["rim_ws_pushes_total"]


@pytest.mark.django_db(transaction=True)
async def test_rest_requests_are_counted_by_pattern_never_by_path():
    """Ids, query strings (with a token in them) and unknown paths never become label
    values: unknown routes share one label, and non-API paths are not counted."""
    secret = "0f0e0d0c-0b0a-4909-8807-060504030201"
    api = AsyncClient()
    before = await scrape()
    assert (await api.get(f"/api/user/token?token={secret}")).status_code == 401
    assert (await api.get("/api/user/get?uid=12345")).status_code == 401
    for unknown in ("/api/no/such/route", "/api/user/get/12345", f"/api/{secret}"):
        assert (await api.get(unknown)).status_code == 404
    assert (await api.get("/no-such-page")).status_code == 404
    after = await scrape()

    def grew(**labels) -> float:
        name = "rim_rest_requests_total"
        return sample(after, "rim_rest_requests", name, **labels) - sample(
            before, "rim_rest_requests", name, **labels
        )

    assert grew(route="api/user/token", status="401") == 1
    assert grew(route="api/user/get", status="401") == 1
    assert grew(route="unknown", status="404") == 3
    routes = {s.labels["route"] for s in after["rim_rest_requests"].samples}
    assert all(route == "unknown" or route.startswith("api/") for route in routes), routes
    text = (await AsyncClient().get("/metrics")).content.decode()
    assert secret not in text and "12345" not in text and "no-such" not in text


@pytest.mark.django_db
async def test_refused_metrics_look_like_any_unknown_page(metrics_token):
    """A relayed request without the token gets the very 404 of a page that does not
    exist; with the token it gets the metrics."""
    relayed = {"x-forwarded-for": OUTSIDER}
    refused = await AsyncClient().get("/metrics", headers=relayed)
    unknown = await AsyncClient().get("/no-such-page", headers=relayed)
    assert refused.status_code == unknown.status_code == 404
    assert refused.content == unknown.content
    assert "rim_ws_events" in await scrape(authorization=f"Bearer {TOKEN}", **relayed)


# -- /healthz and /readyz --------------------------------------------------------------


async def test_healthz_answers_whatever_the_host_header(settings):
    """Probes call the process by its address, which ALLOWED_HOSTS does not list."""
    settings.ALLOWED_HOSTS = ["chat.example.com"]
    settings.SECURE_SSL_REDIRECT = True
    response = await AsyncClient().get("/healthz", headers={"host": "10.1.2.3:8000"})
    assert response.status_code == 200
    assert json.loads(response.content) == {"status": "ok"}
    assert response["Content-Type"] == "application/json"
    assert "no-store" in response["Cache-Control"]
    # Everything else still has its Host checked.
    other = await AsyncClient().get("/no-such-page", headers={"host": "10.1.2.3:8000"})
    assert other.status_code == 400


@pytest.mark.django_db(transaction=True)
async def test_readyz_reports_each_dependency(settings):
    response = await AsyncClient().get("/readyz", headers={"host": "10.1.2.3"})
    assert response.status_code == 200, response.content
    expected = {"database": "ok", **({"redis": "ok"} if settings.REDIS_URL else {})}
    assert json.loads(response.content) == {"status": "ready", "checks": expected}
    assert "no-store" in response["Cache-Control"]


async def test_readyz_is_503_naming_what_failed(settings, monkeypatch):
    def refused() -> None:
        raise ConnectionRefusedError("nobody listens")

    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    monkeypatch.setattr(monitoring.DATABASE, "probe", refused)
    response = await AsyncClient().get("/readyz")
    assert response.status_code == 503
    assert json.loads(response.content) == {
        "status": "unavailable",
        "checks": {"database": "ConnectionRefusedError", "redis": "ConnectionError"},
    }


async def test_a_hung_check_times_out_and_later_probes_share_it(caplog):
    """A check that does not return holds one thread, not one per probe; once it
    returns, the next probe starts a new one."""
    release = threading.Event()
    calls = []

    def hangs() -> None:
        calls.append(1)
        if not release.wait(10):
            raise AssertionError("never released")

    check = monitoring.Check("database", hangs)
    with caplog.at_level(logging.WARNING, logger="rim.monitoring"):
        assert await check.status(0.05) == "timeout"
        assert await check.status(0.05) == "timeout"
    assert len(calls) == 1
    assert "event=ready_check_failed dependency=database error=timeout" in caplog.text
    release.set()
    await asyncio.wait_for(asyncio.shield(check.running), 5)
    assert await check.status(1) == "ok"
    assert len(calls) == 2


# -- settings ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("variable", "value"), [("RIM_LOG_FORMAT", "xml"), ("RIM_METRICS_TOKEN", "short")]
)
def test_bad_monitoring_settings_stop_the_process_at_start(variable, value):
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", variable: value},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and variable in result.stderr
