"""Fixtures shared by every test: users, tokens, REST clients."""

import itertools
import uuid

import pytest
from asgiref.sync import SyncToAsync
from django.db import connections
from rest_framework.test import APIClient

from accounts import services as accounts
from infra import dbworkers
from tests.files_helpers import (  # noqa: F401 (fixtures)
    alice_client,
    file_storage,
    moto_server,
    upload_sandbox,
)
from tests.live import FAST_HASHER

_accounts = itertools.count(1)


@pytest.fixture(scope="session", autouse=True)
def _close_the_orm_threads_connections(django_db_setup):
    """Consumers run their queries on their database thread, tests' helpers on asgiref's
    single ORM thread: their connections would otherwise keep PostgreSQL from dropping
    the test database at the end."""
    yield
    dbworkers.workers().close_connections()
    SyncToAsync.single_thread_executor.submit(connections.close_all).result()


@pytest.fixture(autouse=True)
def _own_cache(settings):
    """Each test starts with no throttle counts or login failures: a cache namespace
    of its own (never a flush: a shared Redis holds other runs' keys too)."""
    default = settings.CACHES["default"]
    prefix = f"{default.get('KEY_PREFIX', '')}:{uuid.uuid4().hex}"
    settings.CACHES = {"default": {**default, "KEY_PREFIX": prefix}}


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # Django's default PBKDF2 costs ~0.7 s a hash here; hashing stays real, only cheaper.
    settings.PASSWORD_HASHERS = [FAST_HASHER]


@pytest.fixture
def make_user(db):
    """make_user("alice") → a saved User with password "secret-pw"."""

    def make(account: str | None = None, **fields):
        account = account or f"user{next(_accounts)}"
        return accounts.create_user(
            account=account,
            password=fields.pop("password", "secret-pw"),
            name=fields.pop("name", account.title()),
            **fields,
        )

    return make


@pytest.fixture
def alice(make_user):
    return make_user("alice")


@pytest.fixture
def bob(make_user):
    return make_user("bob")


@pytest.fixture
def carol(make_user):
    return make_user("carol")


@pytest.fixture
def token_for(db):
    def token(user, password: str = "secret-pw") -> str:
        return accounts.issue_token(account=user.account, password=password)

    return token


@pytest.fixture
def api_client():
    return APIClient()


@pytest.fixture
def client_for(token_for):
    """client_for(user) → an APIClient sending that user's fresh Bearer token."""

    def client(user) -> APIClient:
        api = APIClient()
        api.credentials(HTTP_AUTHORIZATION=f"Bearer {token_for(user)}")
        return api

    return client
