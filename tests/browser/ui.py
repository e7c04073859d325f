"""Page helpers for the browser tests: a user's browser tab on the web client, and
server-side setup (users, friendships, bulk messages) done over REST and WebSocket so
that each test drives the UI only for the behaviour it is about."""

import itertools
import json
import re
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from playwright.sync_api import Locator, Page, WebSocket, expect
from websockets.sync.client import connect

from tests.live import DaphneServer, api, frame

SCREENSHOTS = Path(__file__).resolve().parent / "screenshots"
PASSWORD = "secret-pw"
# The short_windows server's recall and edit windows, in seconds: long enough to act
# within, short enough to wait out.
SHORT_WINDOW = 8
_serial = itertools.count(1)


def unique_account(prefix: str) -> str:
    return f"{prefix}{next(_serial)}{uuid.uuid4().hex[:6]}"


@dataclass
class Account:
    uid: int
    account: str
    name: str
    token: str
    password: str = PASSWORD


def make_account(server: DaphneServer, name: str) -> Account:
    """A registered user (over REST), with a login token for server-side helpers."""
    account = unique_account(name.split()[0].lower())
    uid = api(
        server.http_url,
        "user/create",
        {"name": name, "avatar": "", "email": "", "account": account, "password": PASSWORD},
    )
    token = api(server.http_url, "user/login", {"account": account, "password": PASSWORD})
    return Account(uid=uid, account=account, name=name, token=token)


def befriend(server: DaphneServer, a: Account, b: Account) -> int:
    """a asks, b accepts; returns the gid of their one-to-one conversation."""
    api(server.http_url, "friend/add", {"fid": b.uid}, token=a.token)
    api(server.http_url, "friend/status/modify", {"fid": a.uid, "status": 1}, token=b.token)
    groups = api(server.http_url, f"group/get?uid={a.uid}", token=a.token)
    direct = [g["id"] for g in groups if g["mode"] == 1]
    for gid in direct:
        members = api(server.http_url, f"group/user/get?gid={gid}", token=a.token)
        if {m["user"]["id"] for m in members} == {a.uid, b.uid}:
            return gid
    raise AssertionError(f"no one-to-one group for {a.account} and {b.account}: {groups}")


def befriended_pair(server: DaphneServer) -> tuple[Account, Account, int]:
    """Alice and Bob, friends: (alice, bob, the gid of their one-to-one chat)."""
    alice = make_account(server, "Alice Liddell")
    bob = make_account(server, "Bob Builder")
    return alice, bob, befriend(server, alice, bob)


def make_group(server: DaphneServer, admin: Account, name: str, members: list[Account]) -> int:
    """A group created by `admin` (its admin) with `members` as plain members; its gid."""
    return api(
        server.http_url,
        "group/create",
        {
            "group": {"name": name, "avatar": "", "mode": 2, "creatorUid": admin.uid},
            "users": [{"uid": member.uid, "role": 1} for member in members],
        },
        token=admin.token,
    )


def events_over_ws(server: DaphneServer, user: Account, events: list[tuple[str, dict]]) -> list:
    """Send client events (name, body fields) as `user` from a raw protocol client, each
    after the ack of the one before; returns their acks."""
    acks = []
    with connect(server.ws_url) as ws:
        ws.send(frame("Login", user.uid, content=user.token, cmid="login"))
        assert json.loads(ws.recv(timeout=10))["content"] == "Ok"
        for event, fields in events:
            cmid = uuid.uuid4().hex
            body = {"kind": "Text", "uid": user.uid, "gid": None, "content": "", "msgId": None}
            ws.send(json.dumps({"event": event, "body": {**body, **fields, "clientMsgId": cmid}}))
            while True:
                reply = json.loads(ws.recv(timeout=10))
                if reply.get("clientMsgId") == cmid and "event" not in reply:
                    break
            acks.append(reply)
    return acks


def send_over_ws(
    server: DaphneServer,
    user: Account,
    gid: int,
    contents: list[str],
    kind: str = "Text",
    reply_to: int | None = None,
) -> list[int]:
    """Send messages as `user` from a raw protocol client (each a reply to `reply_to`,
    if given); returns their server ids."""
    reply = {} if reply_to is None else {"replyTo": reply_to}
    msgs = [("Msg", {"gid": gid, "kind": kind, "content": text, **reply}) for text in contents]
    acks = events_over_ws(server, user, msgs)
    assert all(ack["content"] == "Ok" for ack in acks), acks
    return [ack["serverMsgId"] for ack in acks]


def wait_until(page: Page, condition, timeout: float = 10.0, what: str = "condition") -> None:
    """Poll a Python-side condition (e.g. on recorded frames) while Playwright keeps
    dispatching events; fails after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        page.wait_for_timeout(50)


def exact(text: str) -> re.Pattern:
    return re.compile(rf"^\s*{re.escape(text)}\s*$")


class Client:
    """One user's tab on the web client."""

    def __init__(self, page: Page, base_url: str):
        self.page = page
        self.base_url = base_url
        self.frames_sent: list[dict] = []
        self.frames_received: list[dict] = []

    def record_frames(self, ws: WebSocket) -> None:
        ws.on("framesent", lambda payload: self.frames_sent.append(json.loads(payload)))
        ws.on("framereceived", lambda payload: self.frames_received.append(json.loads(payload)))

    # -- navigation and session ------------------------------------------------------

    def goto(self) -> "Client":
        self.page.goto(self.base_url + "/")
        return self

    def register(self, name: str, account: str, password: str = PASSWORD) -> "Client":
        self.page.get_by_test_id("show-register").click()
        form = self.page.get_by_test_id("register-form")
        form.get_by_label("Display name").fill(name)
        form.get_by_label("Account", exact=True).fill(account)
        form.get_by_label("Password").fill(password)
        form.get_by_test_id("register-submit").click()
        self.expect_online()
        return self

    def login(self, user: Account) -> "Client":
        form = self.page.get_by_test_id("login-form")
        form.get_by_label("Account").fill(user.account)
        form.get_by_label("Password").fill(user.password)
        form.get_by_test_id("login-submit").click()
        self.expect_online()
        return self

    def expect_online(self, timeout: float = 10_000) -> None:
        expect(self.page.get_by_test_id("app")).to_be_visible(timeout=timeout)
        expect(self.banner).to_have_attribute("data-state", "online", timeout=timeout)

    @property
    def banner(self) -> Locator:
        return self.page.get_by_test_id("banner")

    # -- conversation list ---------------------------------------------------------

    def conv(self, name: str) -> Locator:
        return self.page.get_by_test_id("conv-item").filter(
            has=self.page.get_by_test_id("conv-name").filter(has_text=exact(name))
        )

    def badge(self, name: str) -> Locator:
        return self.conv(name).get_by_test_id("unread-badge")

    def open_conv(self, name: str) -> "Client":
        self.page.get_by_test_id("tab-chats").click()
        self.conv(name).click()
        expect(self.page.get_by_test_id("chat-name")).to_have_text(name)
        return self

    # -- messages ------------------------------------------------------------------

    @property
    def composer(self) -> Locator:
        return self.page.get_by_test_id("composer-input")

    @property
    def messages(self) -> Locator:
        return self.page.get_by_test_id("msg")

    def message(self, text: str) -> Locator:
        return self.messages.filter(
            has=self.page.get_by_test_id("msg-content").filter(has_text=exact(text))
        )

    def send(self, text: str, shown: str | None = None) -> Locator:
        """Type and press Enter; returns the new message's locator once acked. `shown`:
        the text as displayed, when formatting changes it."""
        self.composer.fill(text)
        self.composer.press("Enter")
        sent = self.message(text if shown is None else shown).last
        expect(sent.get_by_test_id("msg-status")).to_have_attribute(
            "data-status", re.compile("sent|read")
        )
        return sent

    def msg_id(self, message: Locator) -> int:
        return int(message.get_attribute("data-msg-id"))

    def by_id(self, msg_id: int) -> Locator:
        return self.page.locator(f'[data-testid="msg"][data-msg-id="{msg_id}"]')

    def open_menu(self, message: Locator) -> Locator:
        """Open a message's actions menu; returns the menu."""
        message.get_by_test_id("msg-menu-button").click()
        menu = self.page.get_by_test_id("msg-menu")
        expect(menu).to_be_visible()
        return menu

    def recall(self, message: Locator) -> None:
        """Recall from the menu (the item asks once more)."""
        item = self.open_menu(message).get_by_test_id("msg-action-recall")
        item.click()
        expect(item).to_have_text("Recall for everyone?")
        item.click()

    def edit(self, message: Locator, text: str) -> None:
        """Edit in place from the menu, saved with Enter (`message` found by id)."""
        self.open_menu(message).get_by_test_id("msg-action-edit").click()
        box = message.get_by_test_id("msg-edit-input")
        expect(box).to_be_focused()
        box.fill(text)
        box.press("Enter")
        expect(box).to_have_count(0)

    def react(self, message: Locator, emoji: str) -> None:
        self.open_menu(message).locator(
            f'[data-testid="react-option"][data-emoji="{emoji}"]'
        ).click()

    def chip(self, message: Locator, emoji: str) -> Locator:
        return message.locator(f'[data-testid="reaction-chip"][data-emoji="{emoji}"]')

    def events_sent(self, event: str) -> list[dict]:
        return [f["body"] for f in self.frames_sent if f["event"] == event]

    def pushes(self, event: str) -> list[dict]:
        return [f["body"] for f in self.frames_received if f.get("event") == event]

    # -- evidence --------------------------------------------------------------------

    def screenshot(self, name: str, path: Path | None = None) -> None:
        """Save a screenshot; transient chrome (toasts, the fading banner) is hidden."""
        SCREENSHOTS.mkdir(exist_ok=True)
        self.page.screenshot(
            path=str(path or SCREENSHOTS / f"{name}.png"),
            animations="disabled",
            style=".toasts { visibility: hidden !important; }",
        )


def in_chat(open_client, server: DaphneServer, a: Account, b: Account) -> tuple[Client, Client]:
    """a and b logged in, each in a tab of their own with the other's one-to-one chat
    open."""
    return (
        open_client(server).login(a).open_conv(b.name),
        open_client(server).login(b).open_conv(a.name),
    )
