"""Browser tests: Debian's Chromium (headless, through Playwright) against a real daphne
subprocess from tests/live.py. Every test module here sets `pytestmark = pytest.mark.browser`."""

import shutil

import pytest
from playwright.sync_api import Browser, expect, sync_playwright

from tests.browser.ui import SHORT_WINDOW, Client, befriended_pair
from tests.live import DaphneServer

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
WIDE = {"width": 1280, "height": 800}

expect.set_options(timeout=10_000)


# Package scope, not session: while sync_playwright() is open, Playwright's event loop
# counts as running in this thread, which would break any asyncio test after this package.
@pytest.fixture(scope="package")
def browser() -> Browser:
    assert shutil.which("chromium") or shutil.which(CHROMIUM), (
        "Chromium is required for the browser tests: apt-get install chromium"
    )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


def serving(workdir, env: dict[str, str] | None = None):
    with DaphneServer(workdir, env=env) as srv:
        yield srv


@pytest.fixture(scope="package")
def server(tmp_path_factory) -> DaphneServer:
    """One server for the tests that do not restart it (users are unique per test)."""
    yield from serving(tmp_path_factory.mktemp("browser-server"))


@pytest.fixture(scope="module")
def quick_presence(tmp_path_factory) -> DaphneServer:
    """A server whose presence grace period is 1 s: going offline shows at once."""
    yield from serving(tmp_path_factory.mktemp("quick-presence"), {"RIM_PRESENCE_GRACE": "1"})


@pytest.fixture(scope="module")
def short_windows(tmp_path_factory) -> DaphneServer:
    """A server whose recall and edit windows are SHORT_WINDOW seconds."""
    env = {"RIM_EDIT_WINDOW": str(SHORT_WINDOW), "RIM_RECALL_WINDOW": str(SHORT_WINDOW)}
    yield from serving(tmp_path_factory.mktemp("short-windows"), env)


@pytest.fixture
def pair(server):
    """Alice and Bob, friends: (alice, bob, gid of their one-to-one chat)."""
    return befriended_pair(server)


@pytest.fixture
def own_server(tmp_path) -> DaphneServer:
    """A server of the test's own, for tests that stop and start it."""
    with DaphneServer(tmp_path / "server") as srv:
        yield srv


@pytest.fixture
def open_client(browser):
    """open_client(server, viewport=...) → a Client in a fresh browser context (its own
    storage, like another device). Records the page's WebSocket frames on the Client.
    Fails the test on any uncaught page error."""
    contexts = []
    errors: list[str] = []

    def open_(server: DaphneServer, viewport: dict | None = None) -> Client:
        # bypass_csp: the client must be safe on its own (test_security), and screenshots
        # inject a style sheet; the page's CSP is asserted separately.
        context = browser.new_context(viewport=viewport or WIDE, locale="en-GB", bypass_csp=True)
        contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda error: errors.append(f"{error.name}: {error.message}"))
        client = Client(page, server.http_url)
        page.on("websocket", client.record_frames)
        return client.goto()

    yield open_
    for context in contexts:
        context.close()
    assert not errors, f"uncaught errors in the page: {errors}"
