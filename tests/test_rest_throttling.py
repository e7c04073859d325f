"""REST throttles (infra.throttling) and the failed-login lockout (accounts.lockout):
429 in the envelope with Retry-After, per client address for user/login, user/create
and user/search, per account for failed logins with a doubling lock, the same answers
for accounts that exist and accounts that do not, and requests let through when the
cache is down. Across processes on Redis: tests/e2e/test_rest_hardening.py."""

import logging
import re

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from accounts import lockout
from accounts.models import Token, User
from infra.throttling import AddressRateThrottle
from tests.live import free_port
from tests.rest_helpers import call, ok

PASSWORD = "secret-pw"
RETRY_MSG = re.compile(r"^too many requests: try again in (\d+) seconds$")
LOCKED_MSG = re.compile(r"^too many failed logins: this account is locked for (\d+) more seconds$")


class Clock:
    """A settable time.time for the throttles and the lockout."""

    def __init__(self, now: float = 1_000_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch):
    fake = Clock()
    monkeypatch.setattr(AddressRateThrottle, "timer", fake)
    monkeypatch.setattr(lockout, "clock", fake)
    return fake


@pytest.fixture
def rates(settings):
    """rates(login="2/min", ...): the throttle rates of the test; the others off."""

    def set_rates(**given):
        settings.RIM_THROTTLE_RATES = {
            scope: given.get(scope) for scope in ("login", "register", "search")
        }

    return set_rates


def from_address(address: str, **headers) -> APIClient:
    return APIClient(REMOTE_ADDR=address, **headers)


def login(client, account: str = "alice", password: str = PASSWORD):
    return call(client, "user/login", {"account": account, "password": password})


def register(client, account: str):
    return call(client, "user/create", {"name": "N", "account": account, "password": PASSWORD})


def assert_throttled(status_and_body, retry_after: int) -> None:
    status, body = status_and_body
    assert status == 429, body
    assert body["data"] is None
    assert RETRY_MSG.match(body["msg"]), body["msg"]
    assert int(RETRY_MSG.match(body["msg"]).group(1)) == retry_after


def retry_after_of(client, route: str, data: dict) -> str:
    return client.post(f"/api/{route}", data, format="json")["Retry-After"]


# Per client address


def test_login_over_the_address_rate_is_429_with_retry_after(rates, clock, alice):
    rates(login="2/min")
    client = from_address("198.51.100.7")
    assert login(client)[0] == 200
    clock.now += 10
    assert login(client)[0] == 200
    clock.now += 5
    assert_throttled(login(client), retry_after=45)
    assert retry_after_of(client, "user/login", {"account": "alice", "password": PASSWORD}) == "45"
    assert Token.objects.filter(user=alice).count() == 2


def test_login_rate_frees_up_when_the_window_passes(rates, clock, alice):
    rates(login="1/min")
    client = from_address("198.51.100.7")
    assert login(client)[0] == 200
    assert login(client)[0] == 429
    clock.now += 61
    assert login(client)[0] == 200


def test_a_throttled_login_is_not_even_parsed(rates, clock, alice):
    rates(login="1/min")
    client = from_address("198.51.100.7")
    assert login(client)[0] == 200
    response = client.post("/api/user/login", data="{", content_type="application/json")
    assert response.status_code == 429


def test_each_address_has_its_own_count(rates, clock, alice):
    rates(login="1/min")
    assert login(from_address("198.51.100.7"))[0] == 200
    assert login(from_address("198.51.100.7"))[0] == 429
    assert login(from_address("198.51.100.8"))[0] == 200


def test_forwarded_for_counts_only_from_a_trusted_proxy(settings, rates, clock, alice):
    rates(login="1/min")
    # An untrusted peer cannot dodge the limit by writing the header.
    for spoofed in ("203.0.113.1", "203.0.113.2"):
        status, _ = login(from_address("198.51.100.7", HTTP_X_FORWARDED_FOR=spoofed))
        assert status == (200 if spoofed.endswith(".1") else 429)
    # Behind a trusted proxy, every client behind it has its own count.
    settings.RIM_TRUSTED_PROXIES = frozenset({"10.0.0.1"})
    for client_address in ("203.0.113.3", "203.0.113.4"):
        proxied = from_address("10.0.0.1", HTTP_X_FORWARDED_FOR=client_address)
        assert login(proxied)[0] == 200
    assert login(from_address("10.0.0.1", HTTP_X_FORWARDED_FOR="203.0.113.3"))[0] == 429


def test_registration_over_the_address_rate_is_429_and_stores_nothing(rates, clock, db):
    rates(register="2/hour")
    client = from_address("198.51.100.7")
    assert register(client, "u1")[0] == 200
    assert register(client, "u2")[0] == 200
    assert_throttled(register(client, "u3"), retry_after=3600)
    assert not User.objects.filter(account="u3").exists()


def test_search_over_the_address_rate_is_429(rates, clock, alice, bob, token_for):
    rates(search="3/min")
    client = from_address("198.51.100.7", HTTP_AUTHORIZATION=f"Bearer {token_for(bob)}")
    for _ in range(3):
        assert ok(client, "user/search", account="alice")["id"] == alice.pk
    status, body = call(client, "user/search", account="alice")
    assert (status, body["data"]) == (429, None)
    # The other routes of the same client are not counted.
    assert ok(client, "user/get", uid=alice.pk)["id"] == alice.pk


def test_message_search_shares_the_search_budget_of_an_address(rates, clock, alice, bob, token_for):
    rates(search="3/min")
    client = from_address("198.51.100.8", HTTP_AUTHORIZATION=f"Bearer {token_for(bob)}")
    assert ok(client, "message/search", {"q": "hello"}) == []
    assert ok(client, "user/search", account="alice")["id"] == alice.pk
    assert ok(client, "message/search", {"q": "hello"}) == []
    status, body = call(client, "message/search", {"q": "hello"})
    assert (status, body["data"]) == (429, None)


def test_search_without_a_token_is_401_and_not_counted(rates, clock, alice):
    rates(search="1/min")
    client = from_address("198.51.100.7")
    for _ in range(3):
        assert call(client, "user/search", account="alice")[0] == 401


def test_rate_off_lets_everything_through(rates, clock, alice):
    rates(login=None)
    client = from_address("198.51.100.7")
    for _ in range(30):
        assert login(client)[0] == 200


def test_routes_have_their_own_counts(rates, clock, alice):
    rates(login="1/min", register="1/min")
    client = from_address("198.51.100.7")
    assert login(client)[0] == 200
    assert register(client, "u1")[0] == 200
    assert login(client)[0] == 429
    assert register(client, "u2")[0] == 429


# Per account: failed logins


@pytest.fixture
def lockout_after_3(settings, rates):
    rates()
    settings.RIM_LOGIN_FAILURES = 3
    settings.RIM_LOGIN_LOCKOUT = 30
    settings.RIM_LOGIN_LOCKOUT_MAX = 200


def fail(times: int, account: str = "alice") -> list[int]:
    return [login(APIClient(), account, "wrong-pw")[0] for _ in range(times)]


def assert_locked(account: str, seconds: int, password: str = PASSWORD) -> None:
    response = APIClient().post(
        "/api/user/login", {"account": account, "password": password}, format="json"
    )
    body = response.json()
    assert response.status_code == 429, body
    assert body["data"] is None and body["ok"] is False
    assert LOCKED_MSG.match(body["msg"]), body["msg"]
    assert int(LOCKED_MSG.match(body["msg"]).group(1)) == seconds
    assert response["Retry-After"] == str(seconds)


def test_failures_below_the_limit_are_plain_401s(lockout_after_3, clock, alice):
    assert fail(2) == [401, 401]
    assert login(APIClient())[0] == 200


def test_the_limit_th_failure_locks_the_account_even_for_the_right_password(
    lockout_after_3, clock, alice
):
    assert fail(3) == [401, 401, 401]
    assert_locked("alice", 30)
    assert not Token.objects.filter(user=alice).exists()


def test_the_lock_counts_down_and_ends(lockout_after_3, clock, alice):
    fail(3)
    clock.now += 12
    assert_locked("alice", 18)
    clock.now += 18.5
    assert login(APIClient())[0] == 200


def test_every_further_failure_doubles_the_lock_up_to_the_maximum(lockout_after_3, clock, alice):
    fail(3)
    for expected in (60, 120, 200, 200):
        clock.now += 1000
        assert fail(1) == [401]
        assert_locked("alice", expected)


def test_logins_during_the_lock_neither_check_the_password_nor_count(
    lockout_after_3, clock, alice, monkeypatch
):
    fail(3)
    checked = []
    with monkeypatch.context() as patched:
        patched.setattr(User, "check_password", lambda self, raw: checked.append(raw))
        for _ in range(5):
            assert_locked("alice", 30)
    assert checked == []
    clock.now += 31
    assert login(APIClient())[0] == 200


def test_a_success_forgets_the_failures(lockout_after_3, clock, alice):
    fail(2)
    assert login(APIClient())[0] == 200
    assert fail(2) == [401, 401]
    assert login(APIClient())[0] == 200


def test_a_success_after_a_lock_starts_the_count_afresh(lockout_after_3, clock, alice):
    fail(3)
    clock.now += 31
    assert login(APIClient())[0] == 200
    fail(3)
    assert_locked("alice", 30)


def test_an_unknown_account_is_locked_exactly_like_a_real_one(lockout_after_3, clock, alice):
    """Same answers in the same order: the lockout tells nothing about which accounts
    exist."""
    real, unknown = [], []
    for account, answers in (("alice", real), ("nobody-here", unknown)):
        for _ in range(4):
            status, body = login(APIClient(), account, "wrong-pw")
            answers.append((status, body["msg"], body["data"]))
    assert real == unknown
    assert [status for status, _, _ in real] == [401, 401, 401, 429]


def test_accounts_are_locked_one_by_one(lockout_after_3, clock, alice, bob):
    fail(3, "alice")
    assert_locked("alice", 30)
    assert login(APIClient(), "bob")[0] == 200


def test_failures_from_many_addresses_add_up(lockout_after_3, clock, alice):
    for address in ("198.51.100.1", "198.51.100.2", "198.51.100.3"):
        assert login(from_address(address), "alice", "wrong-pw")[0] == 401
    assert_locked("alice", 30)


def test_a_right_password_checked_while_failures_locked_the_account_is_refused(
    lockout_after_3, clock, alice, monkeypatch
):
    """Failures on other processes can lock the account while this login's password is
    being checked: the guess that happens to be right is refused like the rest."""
    check = User.check_password

    def check_while_others_fail(self, raw):
        for _ in range(3):
            lockout.login_failed("alice")
        return check(self, raw)

    monkeypatch.setattr(User, "check_password", check_while_others_fail)
    status, body = login(APIClient())
    assert status == 429 and LOCKED_MSG.match(body["msg"])
    assert not Token.objects.filter(user=alice).exists()


def test_the_lockout_keeps_no_account_name_in_the_cache(lockout_after_3, clock, alice):
    fail(3, "alice")
    failures_key, lock_key = lockout._keys("alice")
    assert "alice" not in failures_key + lock_key
    assert cache.get(failures_key) == 3
    assert cache.get(lock_key) == clock.now + 30


# The cache is down


@pytest.fixture
def unreachable_redis_cache(settings):
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{free_port()}/0",
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
    }


def test_without_its_cache_login_still_works_and_says_so_in_the_log(
    rates, settings, unreachable_redis_cache, alice, caplog
):
    rates(login="1/min")
    settings.RIM_LOGIN_FAILURES = 1
    with caplog.at_level(logging.WARNING):
        assert login(from_address("198.51.100.7"))[0] == 200
        assert login(from_address("198.51.100.7"), password="wrong-pw")[0] == 401
        assert login(from_address("198.51.100.7"))[0] == 200
    events = {r.getMessage().split()[0] for r in caplog.records if r.name.startswith("rim.")}
    assert events == {"event=throttle_unavailable", "event=lockout_unavailable"}
