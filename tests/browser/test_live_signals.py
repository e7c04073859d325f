"""Typing and presence (protocol v2) between two users, on a server whose presence grace
period is 1 s, so that going offline shows at once."""

import re

import pytest
from playwright.sync_api import expect

from tests.browser.ui import befriended_pair, in_chat

pytestmark = pytest.mark.browser


def test_the_peer_sees_who_is_typing_until_the_message_comes_or_they_stop(
    quick_presence, open_client
):
    server = quick_presence
    alice_user, bob_user, _ = befriended_pair(server)
    alice, bob = in_chat(open_client, server, alice_user, bob_user)
    typing = bob.page.get_by_test_id("typing-indicator")
    expect(typing).to_be_empty()

    # Typed for about 3 s: at most one Typing event every 2 s goes out.
    alice.composer.press_sequentially("Hello there, Bob", delay=190)
    expect(typing).to_have_text("Alice Liddell is typing…")
    expect(bob.page.get_by_test_id("chat-sub")).to_be_hidden()
    bob.screenshot("typing")
    assert 1 <= len(alice.events_sent("Typing")) <= 2, alice.events_sent("Typing")
    # Quiet for a while: the indicator goes, and the header shows its subtitle again.
    expect(typing).to_be_empty(timeout=9_000)
    expect(bob.page.get_by_test_id("chat-sub")).to_be_visible()

    # Typing again, then sending: the message ends the indicator at once.
    alice.composer.press_sequentially("!")
    expect(typing).to_have_text("Alice Liddell is typing…")
    alice.composer.press("Enter")
    expect(bob.message("Hello there, Bob!")).to_be_visible()
    expect(typing).to_be_empty(timeout=1_000)
    # The one typing sees nothing of their own.
    expect(alice.page.get_by_test_id("typing-indicator")).to_be_empty()


def test_presence_dots_turn_online_at_login_and_last_seen_shows_after_leaving(
    quick_presence, open_client
):
    server = quick_presence
    alice_user, bob_user, _ = befriended_pair(server)
    alice = open_client(server).login(alice_user)

    dot = alice.conv("Bob Builder").get_by_test_id("presence-dot")
    expect(dot).to_have_attribute("data-online", "false")
    alice.open_conv("Bob Builder")
    header = alice.page.get_by_test_id("chat-presence")
    expect(header).to_have_text("offline")  # never seen yet

    bob = open_client(server).login(bob_user)
    expect(dot).to_have_attribute("data-online", "true")
    expect(dot).to_have_attribute("aria-label", "online")
    expect(header).to_have_text("online")
    alice.page.get_by_test_id("tab-contacts").click()
    friend = alice.page.get_by_test_id("friend-item").filter(has_text="Bob Builder")
    expect(friend.get_by_test_id("presence-dot")).to_have_attribute("data-online", "true")
    alice.page.get_by_test_id("tab-chats").click()
    alice.screenshot("presence-online")

    bob.page.get_by_test_id("logout").click()
    expect(dot).to_have_attribute("data-online", "false")
    expect(header).to_have_text(re.compile(r"^last seen today at \d{2}:\d{2}$"))
    alice.page.get_by_test_id("tab-contacts").click()
    expect(friend.get_by_test_id("presence-dot")).to_have_attribute("data-online", "false")

    # A fresh page asks the server (REST) and finds the same.
    alice.page.reload()
    alice.expect_online()
    expect(dot).to_have_attribute("data-online", "false")
    alice.open_conv("Bob Builder")
    expect(header).to_have_text(re.compile(r"^last seen today at \d{2}:\d{2}$"))
