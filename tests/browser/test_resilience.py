"""The client rides out a server restart: banner, reconnect with backoff, re-Login,
queued sends delivered exactly once."""

import re

import pytest
from playwright.sync_api import expect

from tests.browser.ui import befriend, make_account

pytestmark = pytest.mark.browser

RECONNECT = 30_000  # ms: the backoff is capped at 10 s, the server needs a few to boot


def test_client_reconnects_after_a_server_restart_and_delivers_what_was_queued(
    own_server, open_client
):
    server = own_server
    alice_user = make_account(server, "Alice Liddell")
    bob_user = make_account(server, "Bob Builder")
    befriend(server, alice_user, bob_user)
    alice = open_client(server).login(alice_user)
    bob = open_client(server).login(bob_user)
    alice.open_conv("Bob Builder")
    bob.open_conv("Alice Liddell")
    alice.send("Before the restart")
    expect(bob.message("Before the restart")).to_be_visible()

    server.stop()
    for client in (alice, bob):
        expect(client.banner).to_have_attribute("data-state", "offline")
        expect(client.banner).to_contain_text(re.compile(r"reconnecting in \d+ s"))
        expect(client.banner).to_be_visible()
    # Written while the server is down: shown at once, queued, marked as sending.
    alice.composer.fill("Sent while you were down")
    alice.composer.press("Enter")
    queued = alice.message("Sent while you were down")
    expect(queued.get_by_test_id("msg-status")).to_have_attribute("data-status", "pending")
    alice.screenshot("offline-banner")

    server.start()
    for client in (alice, bob):
        expect(client.banner).to_have_attribute("data-state", "online", timeout=RECONNECT)
    expect(queued.get_by_test_id("msg-status")).to_have_attribute(
        "data-status", re.compile("sent|read")
    )
    expect(bob.message("Sent while you were down")).to_have_count(1)

    # Both are logged in again on the new connections: live both ways.
    bob.send("Back online")
    expect(alice.message("Back online")).to_be_visible()
    alice.send("Great")
    expect(bob.message("Great")).to_be_visible()
    expect(bob.messages).to_have_count(4)
    expect(alice.messages).to_have_count(4)
    logins = [f for f in alice.frames_sent if f["event"] == "Login"]
    assert len(logins) >= 2
