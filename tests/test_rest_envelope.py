"""The REST envelope and authentication (docs/protocol.md §5): every answer is
{ok, code, msg, data} with code = HTTP status, every route but user/create and
user/login needs a live Bearer token, and failures have stable shapes."""

import json
import logging
from datetime import timedelta

import pytest
from django.db import OperationalError
from django.test import Client, RequestFactory
from django.utils import timezone
from django.views.generic import TemplateView
from psycopg_pool import PoolTimeout
from rest_framework.test import APIClient

from accounts import services as accounts
from accounts.models import Friendship, Token, User
from chat.models import Group
from infra.api import server_error
from tests.rest_helpers import call, fails, is_id, ok, send

# Every route that needs a token, with an input that would otherwise be valid.
PROTECTED = [
    ("post", "user/logout", {}),
    ("get", "user/get", {"uid": 1}),
    ("get", "user/token", {"token": "00000000-0000-4000-8000-000000000000"}),
    ("get", "user/search", {"account": "alice"}),
    ("post", "group/create", {"group": {"name": "g", "mode": 2}, "users": []}),
    ("post", "group/update", {"id": 1, "name": "n", "avatar": ""}),
    ("get", "group/get", {}),
    ("get", "group/user/get", {"gid": 1}),
    ("post", "group/user/change", {"gid": 1, "uids": [1], "opType": 1}),
    ("post", "message/chat/list", {"page": 1, "size": 10}),
    ("post", "message/history", {"gid": 1, "page": 1, "size": 10}),
    ("post", "message/group/read", {"gid": 1}),
    ("post", "friend/add", {"fid": 1}),
    ("get", "friend/list", {"status": 1}),
    ("post", "friend/status/modify", {"fid": 1, "status": 1}),
]


def request(client, method: str, route: str, payload: dict):
    if method == "get":
        return call(client, route, **payload)
    return call(client, route, payload)


def assert_login_required(status: int, body: dict) -> None:
    assert (status, body) == (
        401,
        {"ok": False, "code": 401, "msg": "login required", "data": None},
    )


@pytest.mark.parametrize(("method", "route", "payload"), PROTECTED)
def test_protected_route_without_token_is_401_login_required(
    api_client, alice, method, route, payload
):
    assert_login_required(*request(api_client, method, route, payload))


@pytest.mark.parametrize(("method", "route", "payload"), PROTECTED)
def test_protected_route_with_garbage_token_is_401_login_required(
    api_client, alice, method, route, payload
):
    api_client.credentials(HTTP_AUTHORIZATION="Bearer not-a-token")
    assert_login_required(*request(api_client, method, route, payload))


@pytest.mark.parametrize(
    "header",
    ["Bearer", "Bearer a b", "Basic YWxpY2U6c2VjcmV0LXB3", "Token {token}", "{token}"],
)
def test_malformed_authorization_header_is_401_even_around_a_valid_token(
    api_client, alice, token_for, header
):
    api_client.credentials(HTTP_AUTHORIZATION=header.format(token=token_for(alice)))
    assert_login_required(*call(api_client, "user/get", uid=alice.pk))


def test_401_names_the_bearer_scheme(api_client, alice):
    response = api_client.get("/api/user/get", {"uid": alice.pk})
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_bearer_keyword_is_case_insensitive(api_client, alice, token_for):
    api_client.credentials(HTTP_AUTHORIZATION=f"bearer {token_for(alice)}")
    assert ok(api_client, "user/get", uid=alice.pk)["id"] == alice.pk


def test_token_past_its_expiry_is_401(client_for, alice):
    client = client_for(alice)
    assert ok(client, "user/get", uid=alice.pk)["id"] == alice.pk
    Token.objects.filter(user=alice).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert_login_required(*call(client, "user/get", uid=alice.pk))


def test_token_lives_for_rim_token_ttl_seconds(settings, alice, token_for):
    settings.RIM_TOKEN_TTL = 3600
    before = timezone.now()
    token_for(alice)
    token = Token.objects.get(user=alice)
    lifetime = token.expires_at - before
    assert timedelta(seconds=3599) < lifetime <= timedelta(seconds=3601)


def test_token_issued_with_zero_ttl_is_already_expired(settings, api_client, alice, token_for):
    settings.RIM_TOKEN_TTL = 0
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {token_for(alice)}")
    assert_login_required(*call(api_client, "user/get", uid=alice.pk))


def test_revoked_token_is_401(api_client, alice, token_for):
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {token_for(alice)}")
    assert ok(api_client, "user/logout", {}) is True
    assert_login_required(*call(api_client, "user/get", uid=alice.pk))


def test_token_of_deactivated_user_is_401_even_if_the_token_row_survives(client_for, alice):
    client = client_for(alice)
    # A queryset update sends no signal: the token row stays, the user check must hold.
    User.objects.filter(pk=alice.pk).update(is_active=False)
    assert Token.objects.filter(user=alice).exists()
    assert_login_required(*call(client, "user/get", uid=alice.pk))


def test_deactivating_a_user_deletes_its_tokens(client_for, alice):
    client = client_for(alice)
    accounts.deactivate_user(user=alice)
    assert not Token.objects.filter(user=alice).exists()
    assert_login_required(*call(client, "user/get", uid=alice.pk))


def test_request_with_garbage_token_changes_nothing(api_client, alice, make_user):
    bob = make_user("bob")
    api_client.credentials(HTTP_AUTHORIZATION="Bearer 00000000-0000-4000-8000-000000000000")
    assert_login_required(*call(api_client, "friend/add", {"fid": bob.pk}))
    assert not Friendship.objects.exists()


def test_database_holds_no_usable_token(alice, token_for):
    key = token_for(alice)
    stored = Token.objects.get(user=alice)
    assert key not in stored.key_hash
    assert stored.key_hash == accounts.hash_token(key)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/api/nope"),
        ("post", "/api/user/nope"),
        ("get", "/api/user/get/"),
        ("get", "/api/"),
        # The description and its page are only at their own paths (test_openapi).
        ("get", "/api/schema"),
        ("get", "/api/docs/nope"),
    ],
)
def test_unknown_route_is_404_invalid_request(client_for, alice, method, path):
    client = client_for(alice)
    response = getattr(client, method)(path)
    assert response.status_code == 404
    assert json.loads(response.content) == {
        "ok": False,
        "code": 404,
        "msg": "invalid request",
        "data": None,
    }


def test_unknown_route_without_token_is_also_404(api_client, db):
    response = api_client.post("/api/nothing/here", {}, format="json")
    assert response.status_code == 404
    assert json.loads(response.content)["msg"] == "invalid request"


@pytest.mark.parametrize(
    ("method", "route"),
    [("get", "user/create"), ("get", "user/login"), ("put", "user/logout"), ("post", "user/get")],
)
def test_wrong_method_is_405_in_the_envelope(client_for, alice, method, route):
    status, body = call(client_for(alice), route, {}, method=method)
    assert status == 405
    assert body["ok"] is False and body["data"] is None
    assert method.upper() in body["msg"]


def test_unexpected_failure_is_500_system_error_and_logged(client_for, alice, monkeypatch, caplog):
    def explode(**kwargs):
        raise RuntimeError("internal detail 4f2a")

    monkeypatch.setattr(accounts, "get_user", explode)
    client = client_for(alice)
    with caplog.at_level(logging.ERROR, logger="rim.api"):
        status, body = call(client, "user/get", uid=alice.pk)
    assert (status, body) == (500, {"ok": False, "code": 500, "msg": "system error", "data": None})
    assert "4f2a" not in json.dumps(body)
    logged = [r for r in caplog.records if r.name == "rim.api" and r.exc_info]
    assert logged and isinstance(logged[0].exc_info[1], RuntimeError)


def test_an_exhausted_database_pool_is_503_server_busy(client_for, alice, monkeypatch, caplog):
    """Every pooled connection stayed busy for RIM_DB_POOL_TIMEOUT: the request is shed
    with 503, not reported as a bug."""

    def pool_timeout(**kwargs):
        try:
            raise PoolTimeout("couldn't get a connection after 10.00 sec")
        except PoolTimeout as exc:
            raise OperationalError(str(exc)) from exc

    monkeypatch.setattr(accounts, "get_user", pool_timeout)
    client = client_for(alice)
    with caplog.at_level(logging.WARNING, logger="rim.api"):
        status, body = call(client, "user/get", uid=alice.pk)
    assert (status, body["msg"]) == (503, "server busy; try again")
    assert "event=db_pool_exhausted" in caplog.text


def test_django_500_handler_answers_in_the_envelope():
    response = server_error(RequestFactory().get("/anything"))
    assert response.status_code == 500
    assert json.loads(response.content) == {
        "ok": False,
        "code": 500,
        "msg": "system error",
        "data": None,
    }


def test_failure_outside_the_api_views_is_500_in_the_envelope(db, monkeypatch):
    def explode(self, request, *args, **kwargs):
        raise RuntimeError("template exploded")

    monkeypatch.setattr(TemplateView, "get", explode)
    response = Client(raise_request_exception=False).get("/")
    assert response.status_code == 500
    assert json.loads(response.content)["msg"] == "system error"


def test_unknown_api_route_answers_in_the_envelope_also_with_debug_on(settings, db):
    settings.DEBUG = True
    response = APIClient().get("/api/nope")
    assert response.status_code == 404
    assert json.loads(response.content)["msg"] == "invalid request"


@pytest.mark.parametrize("route", ["user/create", "user/login", "user/get", "message/history"])
def test_options_is_405_in_the_envelope_not_drf_metadata(client_for, alice, route):
    status, body = call(client_for(alice), route, method="options")
    assert status == 405
    assert body["data"] is None


def test_missing_token_is_401_before_a_malformed_body_is_looked_at(api_client, alice):
    response = api_client.post("/api/friend/add", data="{", content_type="application/json")
    assert response.status_code == 401
    assert json.loads(response.content)["msg"] == "login required"


def test_ids_are_json_numbers_in_every_payload(client_for, alice, make_user):
    bob = make_user("bob")
    alices, bobs = client_for(alice), client_for(bob)
    ok(alices, "friend/add", {"fid": bob.pk})
    ok(bobs, "friend/status/modify", {"fid": alice.pk, "status": 1})
    gid = ok(alices, "group/create", {"group": {"name": "g"}, "users": [{"uid": bob.pk}]})
    send(bob, Group.objects.get(pk=gid))
    payloads = [
        gid,
        ok(alices, "user/get", uid=bob.pk),
        ok(alices, "user/search", account="bob"),
        ok(alices, "friend/list", status=1),
        ok(alices, "group/get"),
        ok(alices, "group/user/get", gid=gid),
        ok(alices, "message/chat/list", {"page": 1, "size": 10}),
        ok(alices, "message/history", {"gid": gid}),
    ]
    found = []

    def walk(value, key=None):
        if isinstance(value, dict):
            for k, v in value.items():
                walk(v, k)
        elif isinstance(value, list):
            for item in value:
                walk(item, key)
        elif key in {"id", "gid", "uid", "creatorUid"}:
            found.append(key)
            assert is_id(value), (key, value)

    walk({"id": payloads[0]})
    walk(payloads[1:])
    assert {"id", "gid", "uid", "creatorUid"} <= set(found)


def test_malformed_json_on_a_protected_route_is_400(client_for, alice):
    response = client_for(alice).post(
        "/api/friend/add", data='{"fid": ', content_type="application/json"
    )
    assert response.status_code == 400
    body = json.loads(response.content)
    assert body["ok"] is False and body["code"] == 400 and body["data"] is None
    assert "JSON" in body["msg"]


def test_json_body_that_is_not_an_object_is_400(client_for, alice):
    assert fails(client_for(alice), "friend/add", [1, 2], expect=400)


def test_400_names_a_nested_field(client_for, alice):
    msg = fails(client_for(alice), "group/create", {"group": {"name": "g", "mode": 3}}, expect=400)
    assert msg.startswith("group.mode")


def test_400_names_an_ill_typed_query_parameter(client_for, alice):
    assert fails(client_for(alice), "user/get", uid="abc", expect=400).startswith("uid")


def test_page_size_above_the_limit_is_400_naming_size(client_for, alice, settings):
    settings.RIM_PAGE_SIZE_MAX = 10
    msg = fails(client_for(alice), "message/chat/list", {"page": 1, "size": 11}, expect=400)
    assert msg.startswith("size")


@pytest.mark.parametrize("page", [0, -1, "x"])
def test_page_below_one_or_not_a_number_is_400_naming_page(client_for, alice, page):
    msg = fails(client_for(alice), "message/chat/list", {"page": page, "size": 5}, expect=400)
    assert msg.startswith("page")


def test_success_envelope_has_null_msg(client_for, alice):
    status, body = call(client_for(alice), "user/get", uid=alice.pk)
    assert status == 200
    assert body["ok"] is True and body["code"] == 200 and body["msg"] is None


def test_responses_are_json(client_for, alice):
    assert (
        client_for(alice)
        .get("/api/user/get", {"uid": alice.pk})["Content-Type"]
        .startswith("application/json")
    )
    assert APIClient().get("/api/nope")["Content-Type"].startswith("application/json")
