"""Helpers for the REST tests: calling a route and checking the envelope, and building
conversations with messages through the services."""

import asyncio
import itertools
import json
import re
import threading

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from django.db import connection
from django.test import TestCase

from accounts.models import Friendship
from chat.models import Group, Membership
from chat.services import create_group, send_message

TIME_RE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$")
USER_KEYS = {"id", "name", "avatar", "email", "account"}
GROUP_KEYS = {"id", "name", "avatar", "mode", "creatorUid"}
MESSAGE_KEYS = {
    *("id", "kind", "content", "gid", "uid", "client_msg_id", "createTime", "updateTime"),
    # v2 (PROTOCOL.md §6.3)
    *("recalled", "editTime", "replyTo", "reactions"),
}
CHAT_MESSAGE_KEYS = {"group", "msg", "user", "unread"}

_client_msg_ids = itertools.count(1)


class FastPBKDF2PasswordHasher(PBKDF2PasswordHasher):
    """Django's default algorithm (hashes read "pbkdf2_sha256$…") at a test-friendly cost."""

    iterations = 1000


def call(client, route: str, data=None, *, method: str | None = None, **query):
    """Call /api/<route> (POST with a JSON body when `data` is given, else GET with
    `query`) and check the envelope; returns (HTTP status, envelope)."""
    method = method or ("post" if data is not None else "get")
    url = f"/api/{route}"
    if method == "get":
        response = client.get(url, query)
    else:
        response = getattr(client, method)(url, data, format="json")
    body = json.loads(response.content)
    assert set(body) == {"ok", "code", "msg", "data"}, body
    assert body["code"] == response.status_code, body
    assert body["ok"] is (200 <= response.status_code < 300), body
    return response.status_code, body


def ok(client, route: str, data=None, **query):
    """The `data` of a successful call (msg null)."""
    status, body = call(client, route, data, **query)
    assert status == 200, body
    assert body["msg"] is None, body
    return body["data"]


def fails(client, route: str, data=None, *, expect: int, **query) -> str:
    """The `msg` of a call that must fail with HTTP status `expect` (data null)."""
    got, body = call(client, route, data, **query)
    assert got == expect, body
    assert body["data"] is None, body
    assert isinstance(body["msg"], str) and body["msg"], body
    return body["msg"]


def is_id(value) -> bool:
    """A JSON number that is an integer id (bool is an int in Python: excluded)."""
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def send(sender, group, content: str = "hi", kind: str = "Text"):
    """A stored message (through the real send service)."""
    return send_message(
        sender_id=sender.pk,
        gid=group.pk,
        kind=kind,
        content=content,
        client_msg_id=f"cmid-{next(_client_msg_ids)}",
    ).message


def group_of(creator, *members, name: str = "team") -> Group:
    """A mode-2 group: the creator (admin) and `members` (role 1)."""
    return create_group(
        creator=creator,
        name=name,
        avatar="",
        mode=Group.GROUP,
        members={m.pk: Membership.MEMBER for m in members},
    )


def direct_chat(user, other) -> Group:
    return create_group(
        creator=user, name="", avatar="", mode=Group.ONE_TO_ONE, members={other.pk: 1}
    )


def befriend(user, other) -> None:
    """Both FRIENDS edges, as a confirmed request leaves them (no chat opened)."""
    Friendship.objects.create(from_user=user, to_user=other, status=Friendship.FRIENDS)
    Friendship.objects.create(from_user=other, to_user=user, status=Friendship.FRIENDS)


def events_published(settings, layer_groups: str | list[str], action) -> list[dict]:
    """Run `action`, then its on-commit callbacks, and return the channel-layer events it
    published to `layer_groups`, in order. Uses a private in-memory layer: a shared Redis
    may carry other test runs' events."""
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    layer = get_channel_layer()
    listener = async_to_sync(layer.new_channel)()
    for layer_group in [layer_groups] if isinstance(layer_groups, str) else layer_groups:
        async_to_sync(layer.group_add)(layer_group, listener)
    with TestCase.captureOnCommitCallbacks(execute=True):
        action()

    async def drain() -> list[dict]:
        events = []
        while True:
            try:
                events.append(await asyncio.wait_for(layer.receive(listener), timeout=0.1))
            except TimeoutError:
                return events

    return async_to_sync(drain)()


def run_in_threads(count: int, work) -> list:
    """Run work(index) in `count` threads released together; each thread closes its
    own database connection. Returns the results; re-raises the first failure."""
    barrier = threading.Barrier(count)
    results: list = [None] * count
    errors: list[BaseException] = []

    def worker(index: int) -> None:
        try:
            barrier.wait(timeout=30)
            results[index] = work(index)
        except BaseException as exc:  # re-raised below, in the test's thread
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a sender hung"
    if errors:
        raise errors[0]
    return results
