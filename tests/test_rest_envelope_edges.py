"""Every answer under /api/ is the envelope, whatever the method and content type
(issue 11, item 10): unknown routes, CSRF refusals, 405, 415, oversize bodies (413),
malformed multipart, HEAD and OPTIONS, Django's own 400s. The clients here enforce
CSRF as a browser's requests meet it. The same pass against a real server is in
tests/e2e/test_rest_hardening.py."""

import json

import pytest
from django.http import HttpResponse
from django.urls import path
from rest_framework.test import APIClient

import rimsite.urls
from accounts.models import User

PASSWORD = "secret-pw"
MULTIPART = "multipart/form-data; boundary=rimboundary"
WELL_FORMED_MULTIPART = (
    b'--rimboundary\r\nContent-Disposition: form-data; name="account"\r\n\r\nalice\r\n'
    b"--rimboundary--\r\n"
)
BODIES = {
    "multipart": (MULTIPART, WELL_FORMED_MULTIPART),
    "malformed multipart": (MULTIPART, b"--rimboundary\r\nnot a part at all"),
    "form": ("application/x-www-form-urlencoded", b"account=alice&password=x"),
    "json": ("application/json", b'{"account": "alice"}'),
    "text": ("text/plain", b"hello"),
}


def plain_form_view(request):
    """A Django view under /api/ that is not exempt from CSRF (none of rim's is): what
    the envelope guarantee covers should one ever be added."""
    return HttpResponse("done")


urlpatterns = [
    path("api/plain-form", plain_form_view),
    path("plain-form", plain_form_view),
    *rimsite.urls.urlpatterns,
]


@pytest.fixture
def browser_like():
    """A client that meets Django's CSRF check like a browser's request."""
    return APIClient(enforce_csrf_checks=True)


def envelope_of(response, status: int) -> dict:
    assert response.status_code == status, response.content[:300]
    assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
    body = json.loads(response.content)
    assert body == {"ok": False, "code": status, "msg": body["msg"], "data": None}
    assert isinstance(body["msg"], str) and body["msg"]
    return body


def send(client, method: str, route: str, kind: str, **extra):
    content_type, body = BODIES[kind]
    return client.generic(method, route, body, content_type=content_type, **extra)


@pytest.mark.parametrize("kind", BODIES)
@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_unknown_route_is_404_whatever_the_method_and_body(browser_like, db, method, kind):
    body = envelope_of(send(browser_like, method, "/api/no/such/route", kind), 404)
    assert body["msg"] == "invalid request"


@pytest.mark.parametrize("method", ["GET", "OPTIONS"])
def test_unknown_route_is_404_for_reading_methods_too(browser_like, db, method):
    envelope_of(browser_like.generic(method, "/api/no/such/route"), 404)


@pytest.mark.parametrize("route", ["/api", "/api/"])
def test_the_api_root_is_404_not_a_redirect_or_an_error(browser_like, db, route):
    envelope_of(browser_like.post(route, {}, format="json"), 404)
    envelope_of(browser_like.get(route), 404)


def test_head_of_an_unknown_route_is_404_as_json(browser_like, db):
    response = browser_like.head("/api/no/such/route")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"


@pytest.mark.urls(__name__)
@pytest.mark.parametrize("kind", ["multipart", "form", "json"])
def test_a_csrf_refusal_under_api_is_403_in_the_envelope(browser_like, db, kind):
    envelope_of(send(browser_like, "POST", "/api/plain-form", kind), 403)


@pytest.mark.urls(__name__)
def test_a_csrf_refusal_elsewhere_keeps_djangos_page(browser_like, db):
    response = send(browser_like, "POST", "/plain-form", "form")
    assert response.status_code == 403
    assert response["Content-Type"].startswith("text/html")


@pytest.mark.parametrize("kind", ["multipart", "malformed multipart", "form", "text"])
def test_a_body_that_is_not_json_is_415_and_stores_nothing(browser_like, db, kind):
    body = envelope_of(send(browser_like, "POST", "/api/user/create", kind), 415)
    assert "media type" in body["msg"]
    assert not User.objects.exists()


@pytest.mark.parametrize("kind", ["multipart", "malformed multipart"])
def test_multipart_to_a_protected_route_is_401_first(browser_like, db, kind):
    body = envelope_of(send(browser_like, "POST", "/api/friend/add", kind), 401)
    assert body["msg"] == "login required"


@pytest.mark.parametrize("kind", ["multipart", "json"])
def test_a_method_the_route_does_not_have_is_405(browser_like, db, kind):
    body = envelope_of(send(browser_like, "PUT", "/api/user/login", kind), 405)
    assert "PUT" in body["msg"]


def oversize(client, route: str, limit: int = 1000):
    payload = json.dumps(
        {"name": "A", "account": "alice", "password": PASSWORD, "pad": "x" * limit}
    )
    return client.generic("POST", route, payload, content_type="application/json")


@pytest.mark.parametrize("route", ["/api/user/create", "/api/user/login"])
def test_a_body_over_the_limit_is_413_before_anything_reads_it(
    settings, browser_like, db, route, monkeypatch
):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    parsed = []
    monkeypatch.setattr(
        "rest_framework.parsers.JSONParser.parse", lambda *args: parsed.append(args) or {}
    )
    assert envelope_of(oversize(browser_like, route), 413)["msg"] == "request body over 1000 bytes"
    assert parsed == [] and not User.objects.exists()


def test_a_body_over_the_limit_on_a_protected_route_is_413_with_a_token(
    settings, client_for, alice
):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    envelope_of(oversize(client_for(alice), "/api/friend/add"), 413)


@pytest.mark.parametrize(("route", "status"), [("/api/friend/add", 401), ("/api/nope", 404)])
def test_a_body_over_the_limit_is_never_read_where_it_is_refused_anyway(
    settings, browser_like, db, route, status
):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    envelope_of(oversize(browser_like, route), status)


def test_a_body_at_the_limit_is_served(settings, browser_like, db):
    payload = json.dumps({"name": "A", "account": "alice", "password": PASSWORD})
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = len(payload)
    response = browser_like.generic(
        "POST", "/api/user/create", payload, content_type="application/json"
    )
    assert response.status_code == 200
    assert User.objects.filter(account="alice").exists()


def test_head_of_a_get_route_answers_its_status_as_json(browser_like, client_for, alice):
    response = client_for(alice).head("/api/user/get", {"uid": alice.pk})
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    response = browser_like.head("/api/user/get", {"uid": alice.pk})
    assert response.status_code == 401


def test_head_of_a_post_route_is_405(browser_like, db):
    response = browser_like.head("/api/user/login")
    assert response.status_code == 405
    assert response["Content-Type"] == "application/json"


@pytest.mark.parametrize(
    ("route", "status"),
    [("/api/user/login", 405), ("/api/user/get", 401), ("/api/no/such/route", 404)],
)
def test_options_is_answered_in_the_envelope(browser_like, db, route, status):
    envelope_of(browser_like.options(route), status)


@pytest.mark.parametrize("debug", [False, True])
def test_a_host_not_allowed_is_400_in_the_envelope(settings, browser_like, db, debug):
    settings.DEBUG = debug
    envelope_of(browser_like.get("/api/user/get", HTTP_HOST="evil.example"), 400)


def test_a_host_not_allowed_elsewhere_keeps_djangos_page(settings, browser_like, db):
    settings.DEBUG = False
    response = browser_like.get("/", HTTP_HOST="evil.example")
    assert response.status_code == 400
    assert not response["Content-Type"].startswith("application/json")


def test_too_many_query_fields_is_400_not_a_server_error(settings, client_for, alice):
    settings.DATA_UPLOAD_MAX_NUMBER_FIELDS = 10
    query = "&".join(f"f{n}=1" for n in range(11))
    body = envelope_of(client_for(alice).get(f"/api/user/get?uid={alice.pk}&{query}"), 400)
    assert "DATA_UPLOAD_MAX_NUMBER_FIELDS" in body["msg"]


def test_a_redirect_under_api_keeps_its_location_in_the_envelope(settings, browser_like, db):
    """Behind RIM_SSL_REDIRECT, plain HTTP is sent to HTTPS: still in the envelope."""
    settings.SECURE_SSL_REDIRECT = True
    response = browser_like.get("/api/user/get")
    envelope_of(response, 301)
    assert response["Location"] == "https://testserver/api/user/get"
