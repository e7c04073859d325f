"""What operators and their tools ask of a running process: /metrics, /healthz, /readyz,
and the count of REST requests by route and status.

The three endpoints are answered by the first middleware, before Django checks the
Host header (a probe or a scraper calls the process by its address, which
RIM_ALLOWED_HOSTS rightly does not list) or redirects to HTTPS (RIM_SSL_REDIRECT), and
outside the REST envelope: plain JSON, or Prometheus' text format.

- /healthz: the process answers. Nothing else is touched.
- /readyz: the database answers a SELECT 1 and, with REDIS_URL, Redis a PING, each
  within RIM_READY_TIMEOUT seconds, off the event loop: 200, otherwise 503.
- /metrics: the process's REGISTRY (infra.metrics), only for a client on this host or
  one that sends RIM_METRICS_TOKEN as a Bearer token. Anyone else gets whatever the
  same path would get without this middleware (the 404 of any unknown page), so its
  existence is not given away.
"""

import asyncio
import hmac
import ipaddress
import logging
from collections.abc import Callable

import redis
from asgiref.sync import markcoroutinefunction
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.utils import load_backend
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.cache import add_never_cache_headers
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from redis.backoff import NoBackoff
from redis.retry import Retry

from infra import clientaddr, metrics
from infra.api import not_found

log = logging.getLogger("rim.monitoring")

HEALTH_PATH = "/healthz"
READY_PATH = "/readyz"
METRICS_PATH = "/metrics"
# Headers a proxy adds when it relays a request (X-Real-IP is nginx's habit).
FORWARDING_HEADERS = ("HTTP_X_FORWARDED_FOR", "HTTP_FORWARDED", "HTTP_X_REAL_IP")
# The route label of REST requests that matched no route (or were refused before
# routing): one label, whatever the path, so that the label values stay bounded.
UNKNOWN_ROUTE = "unknown"


class AsyncMiddleware:
    """A middleware that runs on the event loop (no thread hop of its own)."""

    sync_capable = False
    async_capable = True

    def __init__(self, get_response):
        self.get_response = get_response
        markcoroutinefunction(self)


class MonitoringEndpoints(AsyncMiddleware):
    """Answers /healthz, /readyz and /metrics; passes every other request on."""

    async def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.method in ("GET", "HEAD"):
            path = request.path_info
            if path == HEALTH_PATH:
                return uncached(JsonResponse({"status": "ok"}))
            if path == READY_PATH:
                return uncached(await readiness())
            if path == METRICS_PATH and may_read_metrics(request):
                return uncached(await exposition())
        return await self.get_response(request)


class CountRestRequests(AsyncMiddleware):
    """Counts every request under /api/ in rim_rest_requests by its URL pattern (never
    the path itself: ids and query strings would make the label values unbounded,
    and a token in a query string would end up in the metrics) and status."""

    async def __call__(self, request: HttpRequest) -> HttpResponse:
        response = await self.get_response(request)
        if request.path_info.startswith("/api/"):
            metrics.REST_REQUESTS.labels(route_of(request), str(response.status_code)).inc()
        return response


def route_of(request: HttpRequest) -> str:
    match = getattr(request, "resolver_match", None)
    if match is None or match.func is not_found:
        return UNKNOWN_ROUTE
    return match.route


def uncached(response: HttpResponse) -> HttpResponse:
    add_never_cache_headers(response)
    return response


# -- /metrics ----------------------------------------------------------------------


def may_read_metrics(request: HttpRequest) -> bool:
    return has_metrics_token(request) or is_local(request)


def has_metrics_token(request: HttpRequest) -> bool:
    """`Authorization: Bearer <RIM_METRICS_TOKEN>`, compared in constant time."""
    expected = settings.RIM_METRICS_TOKEN
    scheme, _, given = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
    return (
        bool(expected)
        and scheme.lower() == "bearer"
        and hmac.compare_digest(given.strip().encode(), expected.encode())
    )


def is_local(request: HttpRequest) -> bool:
    """From this host: the client's address (seen through the proxies rim trusts,
    infra.clientaddr) is a loopback address. A relayed request counts as local only
    when a trusted proxy names a loopback client: a proxy on this host that rim does
    not trust would otherwise pass every client of the internet off as loopback."""
    client = clientaddr.request_address(request)
    relayed = any(header in request.META for header in FORWARDING_HEADERS)
    if relayed and client == request.META.get("REMOTE_ADDR"):
        return False
    return is_loopback(client)


def is_loopback(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:  # "unknown", a host name, an address with a port: not ours
        return False
    mapped = getattr(ip, "ipv4_mapped", None)  # ::ffff:127.0.0.1 from a dual-stack socket
    return (mapped or ip).is_loopback


async def exposition() -> HttpResponse:
    """Every metric of the process in Prometheus' text format, collected on a thread:
    the collectors read /proc and take the locks of the thread-side metrics."""
    body = await asyncio.to_thread(generate_latest, REGISTRY)
    return HttpResponse(body, content_type=CONTENT_TYPE_LATEST)


# -- /readyz -----------------------------------------------------------------------


class Check:
    """One dependency's check, run on a thread, at most one at a time.

    A check that hangs (a database host that drops packets) keeps its thread until
    the operating system gives up; a probe waits for it at most the timeout and says
    "timeout", and the probes that come meanwhile wait for that same check instead of
    stacking up threads behind it.
    """

    def __init__(self, name: str, probe: Callable[[], None]):
        self.name = name
        self.probe = probe
        self.running: asyncio.Future | None = None

    async def status(self, timeout: float) -> str:
        """The outcome: ok, timeout, or the name of the error."""
        running = self.running
        loop = asyncio.get_running_loop()
        if running is None or running.done() or running.get_loop() is not loop:
            running = self.running = asyncio.ensure_future(asyncio.to_thread(self.probe))
            # A check that outlives every probe waiting for it still has its error read.
            running.add_done_callback(lambda done: done.cancelled() or done.exception())
        try:
            async with asyncio.timeout(timeout):
                await asyncio.shield(running)
        except TimeoutError:
            log.warning("event=ready_check_failed dependency=%s error=timeout", self.name)
            return "timeout"
        except Exception as exc:
            log.warning(
                "event=ready_check_failed dependency=%s error=%s detail=%s",
                self.name,
                type(exc).__name__,
                exc,
            )
            return type(exc).__name__
        return "ok"


def database_answers() -> None:
    """SELECT 1 on a connection of its own, closed after: whether the database can be
    reached now, not the state of a connection that broke since the last check. It
    bypasses the pool (PostgreSQL): a process whose pool is busy is saturated, not
    unready, and a probe that waited for the pool would take every busy process out
    of rotation at once."""
    configured = connections.settings[DEFAULT_DB_ALIAS]
    options = {key: value for key, value in configured["OPTIONS"].items() if key != "pool"}
    direct = {**configured, "OPTIONS": options}
    connection = load_backend(direct["ENGINE"]).DatabaseWrapper(direct, DEFAULT_DB_ALIAS)
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    finally:
        connection.close()


def redis_answers() -> None:
    """PING on a new connection, without redis-py's retries (seconds of backoff)."""
    timeout = settings.RIM_READY_TIMEOUT
    client = redis.Redis.from_url(
        settings.REDIS_URL,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=Retry(NoBackoff(), 0),
    )
    try:
        client.ping()
    finally:
        client.close()


DATABASE = Check("database", database_answers)
REDIS = Check("redis", redis_answers)


async def readiness() -> JsonResponse:
    checks = [DATABASE, REDIS] if settings.REDIS_URL else [DATABASE]
    timeout = settings.RIM_READY_TIMEOUT
    results = await asyncio.gather(*(check.status(timeout) for check in checks))
    ready = all(result == "ok" for result in results)
    body = {
        "status": "ready" if ready else "unavailable",
        "checks": {check.name: result for check, result in zip(checks, results, strict=True)},
    }
    response = JsonResponse(body, status=200 if ready else 503)
    # The failed check was logged with its reason; Django would add an ERROR line
    # ("Service Unavailable: /readyz") for every probe of an outage.
    response._has_been_logged = True
    return response
