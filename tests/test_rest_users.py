"""User routes (docs/protocol.md §5): user/create, login, logout, get, token, search."""

import json
import uuid

import pytest
from rest_framework.test import APIClient

from accounts.events import user_channel
from accounts.models import Token, User
from chat.services import send_message
from tests.rest_helpers import USER_KEYS, call, events_published, fails, is_id, ok, run_in_threads

PASSWORD = "s3cret-Passw0rd-7c1"


def new_user(**overrides) -> dict:
    return {
        "name": "Alice",
        "avatar": "https://example.org/a.png",
        "email": "alice@example.org",
        "account": "alice",
        "password": PASSWORD,
        **overrides,
    }


def login(client, account: str = "alice", password: str = PASSWORD) -> str:
    return ok(client, "user/login", {"account": account, "password": password})


def bearer(client, token: str):
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


# user/create


def test_create_user_returns_the_new_id_as_a_json_number(api_client, db):
    uid = ok(api_client, "user/create", new_user())
    assert is_id(uid)
    assert User.objects.get(pk=uid).account == "alice"


def test_create_user_stores_the_profile_and_only_a_hash_of_the_password(api_client, db):
    uid = ok(api_client, "user/create", new_user())
    user = User.objects.get(pk=uid)
    assert (user.name, user.avatar, user.email) == (
        "Alice",
        "https://example.org/a.png",
        "alice@example.org",
    )
    assert user.password != PASSWORD and user.check_password(PASSWORD)


def test_create_user_with_only_the_required_fields(api_client, db):
    uid = ok(api_client, "user/create", {"name": "A", "account": "a1", "password": PASSWORD})
    assert User.objects.get(pk=uid).email == ""


def test_create_user_with_an_existing_account_is_409_and_stores_nothing(api_client, db):
    ok(api_client, "user/create", new_user())
    fails(api_client, "user/create", new_user(name="Other"), expect=409)
    assert User.objects.filter(account="alice").count() == 1
    assert User.objects.get(account="alice").name == "Alice"


@pytest.mark.django_db(transaction=True)
def test_concurrent_creates_of_one_account_store_one_user_and_answer_409():
    def create(index: int) -> int:
        status, _ = call(APIClient(), "user/create", new_user(name=f"Alice {index}"))
        return status

    assert sorted(run_in_threads(4, create)) == [200, 409, 409, 409]
    assert User.objects.filter(account="alice").count() == 1


@pytest.mark.parametrize("field", ["name", "account", "password"])
def test_create_user_missing_a_required_field_is_400_naming_it(api_client, db, field):
    body = new_user()
    del body[field]
    assert fails(api_client, "user/create", body, expect=400).startswith(field)
    assert not User.objects.exists()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("name", ["Alice"]),
        ("account", {"a": 1}),
        ("password", None),
        ("email", ["x"]),
        ("avatar", {"url": "x"}),
    ],
)
def test_create_user_ill_typed_field_is_400_naming_it(api_client, db, field, value):
    msg = fails(api_client, "user/create", new_user(**{field: value}), expect=400)
    assert msg.startswith(field)
    assert not User.objects.exists()


@pytest.mark.parametrize("account", ["", "has space", "x" * 65])
def test_create_user_with_an_unusable_account_is_400_naming_account(api_client, db, account):
    msg = fails(api_client, "user/create", new_user(account=account), expect=400)
    assert msg.startswith("account")


def test_create_user_with_a_too_short_password_is_400_naming_password(api_client, db):
    msg = fails(api_client, "user/create", new_user(password="12345"), expect=400)
    assert msg.startswith("password")


def test_create_user_with_malformed_json_is_400(api_client, db):
    response = api_client.post(
        "/api/user/create", data='{"name": "A", "account": ', content_type="application/json"
    )
    body = json.loads(response.content)
    assert response.status_code == 400
    assert body["code"] == 400 and body["ok"] is False and body["data"] is None
    assert not User.objects.exists()


@pytest.mark.parametrize(
    "header", ["Bearer 0c0f3b5e-8f1e-4e53-9a38-1d2c1fd1e3f4", "Bearer", "garbage x y"]
)
def test_create_user_ignores_a_stale_authorization_header(api_client, db, header):
    api_client.credentials(HTTP_AUTHORIZATION=header)
    assert is_id(ok(api_client, "user/create", new_user()))


def test_create_user_ignores_a_revoked_token(api_client, db):
    ok(api_client, "user/create", new_user())
    token = login(api_client)
    bearer(api_client, token)
    ok(api_client, "user/logout", {})
    assert is_id(ok(api_client, "user/create", new_user(account="bob")))


# user/login


def test_login_returns_a_uuid_token_that_json_parse_cannot_misread(api_client, db):
    ok(api_client, "user/create", new_user())
    token = login(api_client)
    assert isinstance(token, str)
    assert str(uuid.UUID(token)) == token
    # rim's client stores the token in a cookie and reads it back with JSON.parse.
    try:
        parsed = json.loads(token)
    except json.JSONDecodeError:
        parsed = token
    assert not (parsed is None or isinstance(parsed, (bool, int, float)))


def test_login_token_authenticates_as_the_user(api_client, db):
    uid = ok(api_client, "user/create", new_user())
    bearer(api_client, login(api_client))
    assert ok(api_client, "user/get", uid=uid)["account"] == "alice"


def test_login_unknown_account_and_wrong_password_are_the_same_401(api_client, db):
    ok(api_client, "user/create", new_user())
    wrong_password = call(api_client, "user/login", {"account": "alice", "password": "nope-nope"})
    unknown = call(api_client, "user/login", {"account": "nobody", "password": PASSWORD})
    assert wrong_password == unknown
    assert wrong_password[0] == 401
    assert wrong_password[1]["data"] is None
    assert not Token.objects.exists()


def test_each_login_issues_a_new_token_and_both_stay_valid(api_client, make_user, db):
    uid = ok(api_client, "user/create", new_user())
    first, second = login(api_client), login(api_client)
    assert first != second
    assert Token.objects.filter(user_id=uid).count() == 2
    for token in (first, second):
        assert ok(bearer(api_client, token), "user/get", uid=uid)["id"] == uid


@pytest.mark.parametrize("header", ["Bearer 0c0f3b5e-8f1e-4e53-9a38-1d2c1fd1e3f4", "junk"])
def test_login_ignores_a_stale_authorization_header(api_client, db, header):
    ok(api_client, "user/create", new_user())
    api_client.credentials(HTTP_AUTHORIZATION=header)
    uuid.UUID(login(api_client))


def test_login_of_a_deactivated_user_is_401(api_client, db):
    uid = ok(api_client, "user/create", new_user())
    user = User.objects.get(pk=uid)
    user.is_active = False
    user.save()
    fails(api_client, "user/login", {"account": "alice", "password": PASSWORD}, expect=401)


@pytest.mark.parametrize("field", ["account", "password"])
def test_login_missing_a_field_is_400_naming_it(api_client, db, field):
    body = {"account": "alice", "password": PASSWORD}
    del body[field]
    assert fails(api_client, "user/login", body, expect=400).startswith(field)


def test_login_with_malformed_json_is_400(api_client, db):
    response = api_client.post("/api/user/login", data="{", content_type="application/json")
    assert response.status_code == 400
    assert json.loads(response.content)["code"] == 400


# user/logout


def test_logout_answers_true_and_revokes_that_token(api_client, db):
    uid = ok(api_client, "user/create", new_user())
    bearer(api_client, login(api_client))
    assert ok(api_client, "user/logout", {}) is True
    assert fails(api_client, "user/get", uid=uid, expect=401) == "login required"


def test_logout_revokes_only_the_token_of_the_request(api_client, make_user, client_for, db):
    uid = ok(api_client, "user/create", new_user())
    phone, laptop = login(api_client), login(api_client)
    bob = make_user("bob")
    bobs = client_for(bob)
    ok(bearer(api_client, phone), "user/logout", {})
    fails(api_client, "user/get", uid=uid, expect=401)
    assert ok(bearer(api_client, laptop), "user/get", uid=uid)["id"] == uid
    assert ok(bobs, "user/get", uid=bob.pk)["id"] == bob.pk


def test_logout_tells_the_open_connections_of_that_token(
    api_client, settings, make_user, token_for
):
    alice = make_user("alice")
    token_for(alice)
    other_device = Token.objects.get(user=alice)
    bearer(api_client, token_for(alice))
    this_token = Token.objects.exclude(pk=other_device.pk).get(user=alice)
    events = events_published(
        settings, user_channel(alice.pk), lambda: ok(api_client, "user/logout", {})
    )
    assert events == [{"type": "token.revoked", "token_id": this_token.pk}]


# user/get


def test_user_get_returns_the_user_without_its_email_to_others(client_for, make_user):
    alice = make_user("alice", email="a@example.org", avatar="av.png")
    bob = make_user("bob")
    assert ok(client_for(bob), "user/get", uid=alice.pk) == {
        "id": alice.pk,
        "name": "Alice",
        "avatar": "av.png",
        "email": "",
        "account": "alice",
    }


def test_user_get_shows_the_email_to_its_owner_and_to_staff(client_for, make_user):
    alice = make_user("alice", email="a@example.org")
    staff = make_user("moderator")
    User.objects.filter(pk=staff.pk).update(is_staff=True)
    assert ok(client_for(alice), "user/get", uid=alice.pk)["email"] == "a@example.org"
    assert ok(client_for(staff), "user/get", uid=alice.pk)["email"] == "a@example.org"


def test_user_get_unknown_uid_is_404(client_for, make_user):
    alice = make_user("alice")
    fails(client_for(alice), "user/get", uid=alice.pk + 1000, expect=404)


def test_user_get_without_uid_is_400_naming_uid(client_for, make_user):
    assert fails(client_for(make_user()), "user/get", expect=400).startswith("uid")


# user/token


def test_user_token_of_my_own_token_returns_me(api_client, make_user, token_for):
    alice = make_user("alice", email="a@example.org")
    token = token_for(alice)
    data = ok(bearer(api_client, token), "user/token", token=token)
    assert data == {
        "id": alice.pk,
        "name": "Alice",
        "avatar": "",
        "email": "a@example.org",
        "account": "alice",
    }


def test_user_token_of_my_other_devices_token_returns_me(api_client, make_user, token_for):
    alice = make_user("alice")
    other_device = token_for(alice)
    assert ok(bearer(api_client, token_for(alice)), "user/token", token=other_device)["id"] == (
        alice.pk
    )


def test_user_token_of_another_users_token_is_403_and_reveals_nothing(
    client_for, make_user, token_for
):
    alice, bob = make_user("alice"), make_user("bob")
    msg = fails(client_for(alice), "user/token", token=token_for(bob), expect=403)
    assert "bob" not in msg


def test_user_token_of_an_unknown_token_is_403(client_for, make_user):
    fails(client_for(make_user()), "user/token", token=str(uuid.uuid4()), expect=403)


def test_user_token_without_token_is_400_naming_token(client_for, make_user):
    assert fails(client_for(make_user()), "user/token", expect=400).startswith("token")


# user/search


def test_user_search_finds_the_exact_account_with_email_blanked(client_for, make_user):
    alice = make_user("alice", email="alice@example.org", avatar="a.png")
    make_user("alice2")
    bob = make_user("bob")
    assert ok(client_for(bob), "user/search", account="alice") == {
        "id": alice.pk,
        "name": "Alice",
        "avatar": "a.png",
        "email": "",
        "account": "alice",
    }


@pytest.mark.parametrize("query", ["ali", "alic%", "_lice", "ALICE"])
def test_user_search_is_exact_not_a_pattern(client_for, make_user, query):
    make_user("alice")
    fails(client_for(make_user("bob")), "user/search", account=query, expect=404)


def test_user_search_unknown_account_is_404(client_for, make_user):
    fails(client_for(make_user("bob")), "user/search", account="nobody", expect=404)


def test_user_search_does_not_find_a_deactivated_account(client_for, make_user):
    User.objects.filter(pk=make_user("alice").pk).update(is_active=False)
    fails(client_for(make_user("bob")), "user/search", account="alice", expect=404)


@pytest.mark.parametrize(
    "attack",
    [
        "' OR 1=1 --",
        "alice' OR '1'='1",
        "'; DROP TABLE accounts_user; --",
        '" OR ""="',
    ],
)
def test_user_search_sql_injection_is_inert(client_for, make_user, attack):
    make_user("alice")
    bob = make_user("bob")
    client = client_for(bob)
    fails(client, "user/search", account=attack, expect=404)
    assert sorted(User.objects.values_list("account", flat=True)) == ["alice", "bob"]
    assert ok(client, "user/search", account="alice")["account"] == "alice"


def test_user_search_without_account_is_400_naming_account(client_for, make_user):
    assert fails(client_for(make_user()), "user/search", expect=400).startswith("account")


# No response ever carries a password or its hash.


def test_passwords_and_hashes_never_appear_in_any_response(api_client, settings, db):
    settings.PASSWORD_HASHERS = ["tests.rest_helpers.FastPBKDF2PasswordHasher"]
    bodies = []

    def record(response):
        bodies.append(response.content.decode())
        return json.loads(response.content)["data"]

    def post(client, route, data):
        return record(client.post(f"/api/{route}", data, format="json"))

    def get(client, route, **query):
        return record(client.get(f"/api/{route}", query))

    alice_id = post(api_client, "user/create", new_user())
    bob_id = post(api_client, "user/create", new_user(account="bob", name="Bob"))
    post(api_client, "user/create", new_user())  # 409
    post(api_client, "user/login", {"account": "alice", "password": "wrong-password"})
    post(api_client, "user/login", {"account": "alice", "password": PASSWORD[:-1]})
    alice_token = post(api_client, "user/login", {"account": "alice", "password": PASSWORD})
    bob_token = post(api_client, "user/login", {"account": "bob", "password": PASSWORD})
    alice = bearer(type(api_client)(), alice_token)
    bob = bearer(type(api_client)(), bob_token)

    get(alice, "user/get", uid=alice_id)
    get(alice, "user/get", uid=bob_id)
    get(alice, "user/token", token=alice_token)
    get(alice, "user/token", token=bob_token)
    get(alice, "user/search", account="bob")
    post(alice, "friend/add", {"fid": bob_id})
    get(bob, "friend/list", status=0)
    post(bob, "friend/status/modify", {"fid": alice_id, "status": 1})
    get(alice, "friend/list", status=1)
    gid = post(
        alice,
        "group/create",
        {"group": {"name": "g", "avatar": "", "mode": 2}, "users": [{"uid": bob_id, "role": 1}]},
    )
    get(bob, "group/get", uid=bob_id)
    get(bob, "group/user/get", gid=gid)
    send_message(sender_id=bob_id, gid=gid, kind="Text", content="hello", client_msg_id="pw-1")
    post(alice, "message/chat/list", {"uid": alice_id, "page": 1, "size": 20})
    post(alice, "message/history", {"gid": gid, "uid": bob_id, "page": 1, "size": 20})
    post(alice, "message/group/read", {"gid": gid, "uid": alice_id})
    post(alice, "user/logout", {})

    hashes = list(User.objects.values_list("password", flat=True))
    assert all(stored.startswith("pbkdf2_sha256$") for stored in hashes)
    assert len(bodies) == 23
    for body in bodies:
        assert PASSWORD not in body
        assert "pbkdf2" not in body and "md5$" not in body and '"password"' not in body
        for stored in hashes:
            assert stored not in body


def test_user_objects_have_exactly_the_user_fields(client_for, make_user):
    alice = make_user("alice")
    client = client_for(alice)
    assert set(ok(client, "user/get", uid=alice.pk)) == USER_KEYS
    assert set(ok(client, "user/search", account="alice")) == USER_KEYS
