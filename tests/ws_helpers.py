"""Helpers for consumer tests: a client that speaks rim's MsgEvents over
`channels.testing.WebsocketCommunicator`, a small cast of users in a group, and
snapshots of what the database holds.

A test module makes the fixtures its own by binding them at module level
(`connect_fixture = ws_helpers.connect_fixture`); tests ask for them as `connect` and
`team`.
Tests that reach the consumer's ORM need `@pytest.mark.django_db(transaction=True)`:
the consumer runs its queries in another thread.
"""

import asyncio
import contextlib
import itertools
import json
from collections import deque
from dataclasses import dataclass, field

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.conf import settings

from accounts import services as accounts
from accounts.models import User
from chat import services
from chat.models import Group, Membership, Message
from rimsite.asgi import application

# With channels-redis a push crosses Redis: wait generously for what must come.
PUSH_TIMEOUT = 3.0

_client_msg_ids = itertools.count(1)
_UNSET = object()


def layer_is_remote() -> bool:
    return "redis" in str(settings.CHANNEL_LAYERS["default"]["BACKEND"]).lower()


def quiet_time() -> float:
    """How long to listen before concluding that nothing was pushed."""
    return 0.3 if layer_is_remote() else 0.1


def new_client_msg_id() -> str:
    """Unique across the run: a clientMsgId is unique per sender, and a reuse is a retry."""
    return f"cm-{next(_client_msg_ids)}"


def is_ack(frame: object) -> bool:
    return isinstance(frame, dict) and "event" not in frame and frame.get("kind") == "Ack"


def ok_ack(client_msg_id: str | None, server_msg_id: int | None = None) -> dict:
    """The exact success MsgAck of PROTOCOL.md §2: four fields, nothing else."""
    return {
        "clientMsgId": client_msg_id,
        "serverMsgId": server_msg_id,
        "kind": "Ack",
        "content": "Ok",
    }


def assert_error_ack(ack: dict, code: str, client_msg_id: str | None) -> None:
    """An error MsgAck of PROTOCOL.md §4: the code as content, no server id, a detail."""
    assert set(ack) == {"clientMsgId", "serverMsgId", "kind", "content", "detail"}, ack
    assert ack["content"] == code, ack
    assert ack["clientMsgId"] == client_msg_id, ack
    assert ack["serverMsgId"] is None, ack
    assert ack["kind"] == "Ack", ack
    assert isinstance(ack["detail"], str), ack
    assert ack["detail"], ack


class WsClient:
    """One WebSocket connection. Frames that arrive while waiting for something else
    (a push before an ack, say) are kept in order for the next `receive`/`push`."""

    def __init__(self, path: str = "/ws"):
        self.path = path
        self.comm = WebsocketCommunicator(application, path)
        self.inbox: deque[dict] = deque()
        self.uid: int | None = None
        self.closed = False

    async def open(self) -> None:
        connected, _ = await self.comm.connect(timeout=5)
        assert connected, f"connection to {self.path} refused"

    async def close(self) -> None:
        if layer_is_remote():
            # channels-redis (with redis-py) loses the cancellation of a layer receive
            # cancelled within a moment of starting, and the consumer then takes 5 s to
            # end: let the receive the consumer restarted after its last event settle.
            await asyncio.sleep(0.02)
        # A receive that timed out has cancelled the consumer already; the test failed.
        with contextlib.suppress(asyncio.CancelledError):
            await self.comm.disconnect(timeout=5)

    # -- sending ------------------------------------------------------------------

    async def send_raw(self, text: str | None = None, data: bytes | None = None) -> None:
        """A text or binary frame as is (the communicator's send_to refuses empty ones)."""
        if text is not None:
            await self.comm.send_input({"type": "websocket.receive", "text": text})
        else:
            await self.comm.send_input({"type": "websocket.receive", "bytes": data})

    async def send_frame(self, frame: object) -> None:
        await self.send_raw(json.dumps(frame))

    async def send_event(
        self,
        event: str,
        *,
        uid: object = _UNSET,
        gid: object = None,
        msg_id: object = None,
        content: object = "",
        kind: object = "Text",
        client_msg_id: str | None = None,
        **v2_fields,
    ) -> str:
        """Send a MsgEvent shaped like rim's client sends it (plus any v2 fields, such
        as replyTo); returns its clientMsgId."""
        client_msg_id = client_msg_id or new_client_msg_id()
        body = {
            "kind": kind,
            "uid": self.uid if uid is _UNSET else uid,
            "gid": gid,
            "content": content,
            "clientMsgId": client_msg_id,
            "msgId": msg_id,
            **v2_fields,
        }
        await self.send_frame({"event": event, "body": body})
        return client_msg_id

    async def request(self, event: str, **fields) -> dict:
        """Send an event and return its ack."""
        client_msg_id = await self.send_event(event, **fields)
        return await self.ack(client_msg_id)

    async def login(self, user: User, token: str) -> dict:
        self.uid = user.pk
        # rim's client sends gid 3 with its Login: it must be ignored.
        client_msg_id = await self.send_event("Login", uid=user.pk, gid=3, content=token)
        ack = await self.ack(client_msg_id)
        assert ack == ok_ack(client_msg_id), ack
        return ack

    async def msg(self, gid: int, content: str = "hello", **fields) -> int:
        """Send a Msg that must succeed; returns its serverMsgId."""
        client_msg_id = await self.send_event("Msg", gid=gid, content=content, **fields)
        ack = await self.ack(client_msg_id)
        assert ack["content"] == "Ok", ack
        assert type(ack["serverMsgId"]) is int, ack
        return ack["serverMsgId"]

    # -- receiving ----------------------------------------------------------------

    async def _receive_raw(self, timeout: float) -> dict:
        out = await self.comm.receive_output(timeout)
        assert out["type"] == "websocket.send", f"expected a frame, got {out}"
        assert "text" in out, f"expected a text frame, got {out}"
        return json.loads(out["text"])

    async def receive(self, timeout: float = PUSH_TIMEOUT) -> dict:
        if self.inbox:
            return self.inbox.popleft()
        return await self._receive_raw(timeout)

    async def ack(self, client_msg_id: str | None, timeout: float = PUSH_TIMEOUT) -> dict:
        """The ack carrying `client_msg_id`; other frames are kept for later."""
        for index, frame in enumerate(self.inbox):
            if is_ack(frame) and frame["clientMsgId"] == client_msg_id:
                del self.inbox[index]
                return frame
        while True:
            frame = await self._receive_raw(timeout)
            if is_ack(frame) and frame["clientMsgId"] == client_msg_id:
                return frame
            self.inbox.append(frame)

    async def push(self, timeout: float = PUSH_TIMEOUT) -> dict:
        frame = await self.receive(timeout)
        assert not is_ack(frame), f"expected a push, got an ack: {frame}"
        assert set(frame) == {"event", "body"}, frame
        return frame

    async def msg_push(self, timeout: float = PUSH_TIMEOUT) -> dict:
        """The body of the next push, which must be a Msg push."""
        frame = await self.push(timeout)
        assert frame["event"] == "Msg", frame
        return frame["body"]

    async def msg_pushes(self, count: int, timeout: float = PUSH_TIMEOUT) -> list[dict]:
        return [await self.msg_push(timeout) for _ in range(count)]

    async def assert_quiet(self, timeout: float | None = None) -> None:
        """Nothing arrives (nothing pushed, no stray ack) while listening."""
        assert not self.inbox, f"unexpected frames: {list(self.inbox)}"
        if not await self.comm.receive_nothing(timeout or quiet_time()):
            out = self.comm.output_queue.get_nowait()
            raise AssertionError(f"unexpected output: {out}")

    async def drain(self) -> list[dict]:
        """Every frame that arrives until the connection falls quiet."""
        frames = list(self.inbox)
        self.inbox.clear()
        while not await self.comm.receive_nothing(quiet_time()):
            frames.append(await self._receive_raw(PUSH_TIMEOUT))
        return frames

    async def assert_open(self) -> None:
        """The connection is open and serving: a Heart is acked Ok."""
        client_msg_id = await self.send_event("Heart")
        assert await self.ack(client_msg_id) == ok_ack(client_msg_id)

    async def expect_close(self, code: int, timeout: float = PUSH_TIMEOUT) -> None:
        """The server closes this connection with `code`; frames before it are kept."""
        while True:
            out = await self.comm.receive_output(timeout)
            if out["type"] == "websocket.close":
                assert out.get("code") == code, out
                self.closed = True
                return
            self.inbox.append(json.loads(out["text"]))


class DroppingLayer:
    """Drops the next `count` events of `event_type` (by default entries: messages and
    changes) the channel layer is asked to carry, as a full channels-redis group or a
    process dying between commit and publishing would."""

    def __init__(self, monkeypatch, count: int = 1, event_type: str = "chat.entry"):
        self.layer = get_channel_layer()
        self.remaining = count
        self.event_type = event_type
        self.dropped: list[int] = []
        self.original_send = self.layer.group_send
        monkeypatch.setattr(self.layer, "group_send", self.group_send)
        original_now = getattr(self.layer, "group_send_now", None)
        if original_now is not None:
            monkeypatch.setattr(self.layer, "group_send_now", self.send_now(original_now))
        original_many = getattr(self.layer, "group_send_many", None)
        if original_many is not None:
            monkeypatch.setattr(self.layer, "group_send_many", self.send_many(original_many))

    def drops(self, message: dict) -> bool:
        if message.get("type") != self.event_type or self.remaining <= 0:
            return False
        self.remaining -= 1
        if "push" in message:
            self.dropped.append(json.loads(message["push"])["body"]["msgId"])
        return True

    async def group_send(self, group: str, message: dict) -> None:
        if not self.drops(message):
            await self.original_send(group, message)

    def send_many(self, original):
        async def group_send_many(events: list[tuple[str, dict]]) -> None:
            await original(
                [(group, message) for group, message in events if not self.drops(message)]
            )

        return group_send_many

    def send_now(self, original):
        def group_send_now(group: str, message: dict) -> None:
            if not self.drops(message):
                original(group, message)

        return group_send_now


async def assert_all_quiet(*clients: WsClient) -> None:
    """None of `clients` receives anything (listening to all at once)."""
    await asyncio.gather(*(client.assert_quiet() for client in clients))


@pytest.fixture(name="connect")
async def connect_fixture():
    """connect(path="/ws", user=None, token=None) → an open WsClient, logged in when a
    user and token are given; every one is disconnected after the test."""
    clients: list[WsClient] = []

    async def open_client(
        path: str = "/ws", user: User | None = None, token: str | None = None
    ) -> WsClient:
        client = WsClient(path)
        clients.append(client)
        await client.open()
        if user is not None:
            await client.login(user, token)
        return client

    yield open_client
    for client in reversed(clients):
        await client.close()


@dataclass
class Team:
    """alice (admin) and bob in group `gid`; carol outside it, in `side_gid` with dave,
    where carol wrote message `side_msg_id`. One token each, issued up front."""

    alice: User
    bob: User
    carol: User
    dave: User
    gid: int
    side_gid: int
    side_msg_id: int
    tokens: dict[int, str] = field(default_factory=dict)

    def token(self, user: User) -> str:
        return self.tokens[user.pk]


@pytest.fixture(name="team")
def team_fixture(make_user, token_for) -> Team:
    alice, bob, carol, dave = (make_user() for _ in range(4))
    group = services.create_group(
        creator=alice, name="team", avatar="", mode=Group.GROUP, members={bob.pk: 1}
    )
    side = services.create_group(
        creator=carol, name="side", avatar="", mode=Group.GROUP, members={dave.pk: 1}
    )
    side_msg = services.send_message(
        sender_id=carol.pk, gid=side.pk, kind="Text", content="elsewhere", client_msg_id="side-1"
    ).message
    return Team(
        alice=alice,
        bob=bob,
        carol=carol,
        dave=dave,
        gid=group.pk,
        side_gid=side.pk,
        side_msg_id=side_msg.pk,
        tokens={user.pk: token_for(user) for user in (alice, bob, carol, dave)},
    )


# -- the database, from async tests ---------------------------------------------------


@database_sync_to_async
def db_state() -> tuple:
    """Everything an event may change: messages, watermarks and groups' newest seqs.
    Equal before and after an event means it stored nothing."""
    return (
        Message.objects.count(),
        list(Message.objects.order_by("pk").values_list("pk", "group_id", "seq", "content")),
        list(
            Membership.objects.order_by("pk").values_list(
                "group_id", "user_id", "delivered_seq", "read_seq"
            )
        ),
        list(Group.objects.order_by("pk").values_list("pk", "last_seq", "last_msg_id")),
    )


@database_sync_to_async
def message_count(**filters) -> int:
    return Message.objects.filter(**filters).count()


@database_sync_to_async
def get_message(pk: int) -> Message:
    return Message.objects.get(pk=pk)


@database_sync_to_async
def watermarks(user: User, gid: int) -> tuple[int, int]:
    """(delivered_seq, read_seq) of `user` in `gid`."""
    membership = Membership.objects.get(user=user, group_id=gid)
    return membership.delivered_seq, membership.read_seq


@database_sync_to_async
def store_message(user: User, gid: int, content: str = "stored") -> Message:
    """A message stored through the send service, without any connection: what a
    member offline from here sent while the recipient was away."""
    return services.send_message(
        sender_id=user.pk, gid=gid, kind="Text", content=content, client_msg_id=new_client_msg_id()
    ).message


@database_sync_to_async
def issue_token(user: User) -> str:
    return accounts.issue_token(account=user.account, password="secret-pw")
