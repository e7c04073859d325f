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


def send_over_ws(
    server: DaphneServer, user: Account, gid: int, contents: list[str], kind: str = "Text"
) -> list[int]:
    """Send messages as `user` from a raw protocol client; returns their server ids."""
    ids = []
    with connect(server.ws_url) as ws:
        ws.send(frame("Login", user.uid, content=user.token, cmid="login"))
        assert json.loads(ws.recv(timeout=10))["content"] == "Ok"
        for content in contents:
            cmid = uuid.uuid4().hex
            message = json.loads(frame("Msg", user.uid, gid=gid, content=content, cmid=cmid))
            message["body"]["kind"] = kind
            ws.send(json.dumps(message))
            while True:
                reply = json.loads(ws.recv(timeout=10))
                if reply.get("clientMsgId") == cmid and "event" not in reply:
                    break
            assert reply["content"] == "Ok", reply
            ids.append(reply["serverMsgId"])
    return ids


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

    def open_conv(self, name: str) -> None:
        self.page.get_by_test_id("tab-chats").click()
        self.conv(name).click()
        expect(self.page.get_by_test_id("chat-name")).to_have_text(name)

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

    # -- evidence --------------------------------------------------------------------

    def screenshot(self, name: str, path: Path | None = None) -> None:
        """Save a screenshot; transient chrome (toasts, the fading banner) is hidden."""
        SCREENSHOTS.mkdir(exist_ok=True)
        self.page.screenshot(
            path=str(path or SCREENSHOTS / f"{name}.png"),
            animations="disabled",
            style=".toasts { visibility: hidden !important; }",
        )
