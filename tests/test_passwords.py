"""Password hashing on the process's password thread (infra.passwords): one thread at
the lowest priority, a bounded queue answered 503 beyond it, and no hash inside a
transaction. The end-to-end measurement is tests/e2e/test_login_storm.py."""

import os
import threading

import pytest
from django.contrib.auth.hashers import check_password, make_password
from django.db import connection
from rest_framework.test import APIClient

from accounts import services as accounts
from accounts.models import User
from infra import passwords
from infra.errors import ServerBusy
from tests.rest_helpers import call, ok

PASSWORD = "secret-pw"
TEST_HASHER = "tests.test_passwords.FastQueuedHasher"


class FastQueuedHasher(passwords.PBKDF2PasswordHasher):
    """rim's default hasher at a test-friendly cost."""

    iterations = 1000


@pytest.fixture
def queued_hashing(settings):
    settings.PASSWORD_HASHERS = [TEST_HASHER]


@pytest.fixture
def hashes_on(monkeypatch):
    """Records the native thread id and the in-transaction state of every hash."""
    seen: list[tuple[int, bool]] = []
    encode = passwords.password_thread.run

    def run(function, *args):
        def recorded(*inner):
            seen.append((threading.get_native_id(), connection.in_atomic_block))
            return function(*inner)

        return encode(recorded, *args)

    monkeypatch.setattr(passwords.password_thread, "run", run)
    return seen


@pytest.fixture
def blocked_password_thread():
    """The password thread busy until the test calls the release function this yields
    (which returns once the thread is free again)."""
    release = threading.Event()
    started = threading.Event()

    def hold():
        started.set()
        release.wait(30)

    holder = threading.Thread(target=passwords.password_thread.run, args=(hold,))
    holder.start()
    assert started.wait(10)

    def released() -> None:
        release.set()
        holder.join(10)
        assert not holder.is_alive()

    try:
        yield released
    finally:
        released()


def test_hashes_keep_djangos_format_so_stored_passwords_stay_valid(queued_hashing):
    encoded = make_password(PASSWORD)
    assert encoded.startswith("pbkdf2_sha256$1000$")
    assert check_password(PASSWORD, encoded)
    assert not check_password("wrong", encoded)


def test_every_hash_runs_on_one_thread_other_than_the_callers(queued_hashing, hashes_on):
    for _ in range(3):
        check_password(PASSWORD, make_password(PASSWORD))
    threads = {thread for thread, _ in hashes_on}
    assert len(hashes_on) == 6
    assert len(threads) == 1
    assert threading.get_native_id() not in threads


def test_the_password_thread_runs_at_the_lowest_priority():
    def priorities() -> tuple[int, int]:
        mine = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
        return mine, os.getpriority(os.PRIO_PROCESS, os.getpid())

    thread_nice, process_nice = passwords.password_thread.run(priorities)
    assert thread_nice == passwords.LOWEST_PRIORITY
    # Only that thread: the process (its main thread, where the event loop runs) keeps
    # its own priority.
    assert process_nice == os.getpriority(os.PRIO_PROCESS, 0) < passwords.LOWEST_PRIORITY


def test_a_failure_inside_the_hash_reaches_the_caller_and_frees_its_place(settings):
    settings.RIM_PASSWORD_QUEUE = 1

    def explode():
        raise RuntimeError("hash failed")

    with pytest.raises(RuntimeError, match="hash failed"):
        passwords.password_thread.run(explode)
    assert passwords.password_thread.run(lambda: "next") == "next"


def test_beyond_the_queue_a_hash_is_refused_at_once(settings, blocked_password_thread):
    settings.RIM_PASSWORD_QUEUE = 1
    with pytest.raises(ServerBusy) as refused:
        passwords.password_thread.run(lambda: "never")
    assert refused.value.status == 503 and refused.value.retry_after == passwords.RETRY_AFTER
    blocked_password_thread()


def test_the_queue_frees_up_when_the_hashes_are_done(settings, blocked_password_thread):
    settings.RIM_PASSWORD_QUEUE = 1
    blocked_password_thread()
    assert passwords.password_thread.run(lambda: "after") == "after"


def test_login_beyond_the_queue_is_503_in_the_envelope_with_retry_after(
    settings, queued_hashing, db, blocked_password_thread
):
    settings.RIM_PASSWORD_QUEUE = 1
    response = APIClient().post(
        "/api/user/login", {"account": "alice", "password": PASSWORD}, format="json"
    )
    assert response.status_code == 503
    assert response.json() == {
        "ok": False,
        "code": 503,
        "msg": passwords.BUSY,
        "data": None,
    }
    assert response["Retry-After"] == str(passwords.RETRY_AFTER)


def test_registration_beyond_the_queue_is_503_and_stores_nothing(
    settings, queued_hashing, db, blocked_password_thread
):
    settings.RIM_PASSWORD_QUEUE = 1
    status, body = call(
        APIClient(), "user/create", {"name": "A", "account": "alice", "password": PASSWORD}
    )
    assert (status, body["msg"]) == (503, passwords.BUSY)
    assert not User.objects.exists()


def test_a_refused_login_does_not_count_as_a_failed_one(
    settings, queued_hashing, alice, blocked_password_thread
):
    settings.RIM_PASSWORD_QUEUE, settings.RIM_LOGIN_FAILURES = 1, 1
    for _ in range(3):
        status, _ = call(APIClient(), "user/login", {"account": "alice", "password": PASSWORD})
        assert status == 503
    blocked_password_thread()
    assert ok(APIClient(), "user/login", {"account": "alice", "password": PASSWORD})


def test_registration_hashes_before_its_transaction_opens(queued_hashing, db, hashes_on):
    """A hash may wait for the password thread: never while SQLite's write lock (or a
    PostgreSQL transaction) is held."""
    accounts.create_user(account="alice", password=PASSWORD, name="Alice")
    assert hashes_on and not any(in_transaction for _, in_transaction in hashes_on)
    assert User.objects.get(account="alice").check_password(PASSWORD)
