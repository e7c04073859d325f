"""Two people meet through the UI alone: register, befriend, chat live both ways."""

import re

import pytest
from playwright.sync_api import expect

from tests.browser.ui import unique_account

pytestmark = pytest.mark.browser


def test_two_new_users_register_befriend_and_chat_live_both_ways(server, open_client):
    alice = open_client(server).register("Alice Liddell", unique_account("alice"))
    bob_account = unique_account("bob")
    bob = open_client(server).register("Bob Builder", bob_account)
    expect(alice.page.get_by_test_id("me-name")).to_have_text("Alice Liddell")

    # Alice finds Bob by his account and asks him to be friends.
    alice.page.get_by_test_id("tab-contacts").click()
    alice.page.get_by_label("Add a friend by account").fill(bob_account)
    alice.page.get_by_test_id("friend-search-submit").click()
    found = alice.page.get_by_test_id("search-user")
    expect(found).to_contain_text("Bob Builder")
    found.get_by_test_id("friend-add").click()
    expect(alice.page.get_by_test_id("friend-requested")).to_have_text("Request sent")

    # Bob sees the request, accepts, and the one-to-one conversation appears for him.
    bob.page.get_by_test_id("tab-contacts").click()
    expect(bob.page.get_by_test_id("requests-count")).to_have_text("1")
    request = bob.page.get_by_test_id("request-item")
    expect(request).to_contain_text("Alice Liddell")
    request.get_by_test_id("request-accept").click()
    expect(bob.page.get_by_test_id("request-item")).to_have_count(0)
    expect(bob.page.get_by_test_id("friend-item")).to_contain_text("Alice Liddell")
    bob.page.get_by_test_id("tab-chats").click()
    expect(bob.conv("Alice Liddell")).to_be_visible()

    # Alice opens it from her friends list.
    alice.page.get_by_test_id("contacts-refresh").click()
    friend = alice.page.get_by_test_id("friend-item").filter(has_text="Bob Builder")
    friend.get_by_test_id("friend-message").click()
    expect(alice.page.get_by_test_id("chat-name")).to_have_text("Bob Builder")
    expect(alice.page.get_by_test_id("chat-sub")).to_have_text(f"@{bob_account}")

    # Live both ways, each side's own messages on the right.
    bob.open_conv("Alice Liddell")
    hello = alice.send("Hi Bob!")
    expect(hello).to_have_class(re.compile(r"\bmine\b"))
    expect(bob.message("Hi Bob!")).to_have_class(re.compile(r"\btheirs\b"))
    bob.send("Hello Alice, good to see you here.")
    reply = alice.message("Hello Alice, good to see you here.")
    expect(reply).to_have_class(re.compile(r"\btheirs\b"))
    mine = hello.locator(".bubble").bounding_box()
    theirs = reply.locator(".bubble").bounding_box()
    assert mine["x"] > theirs["x"] + theirs["width"], (mine, theirs)

    # Shift+Enter starts a new line, Enter sends the whole text as one message.
    alice.composer.click()
    alice.composer.press_sequentially("first line")
    alice.composer.press("Shift+Enter")
    alice.composer.press_sequentially("second line")
    alice.composer.press("Enter")
    expect(alice.composer).to_have_value("")
    expect(bob.message("first line\nsecond line")).to_have_count(1)

    # Both are looking at the conversation, so each one's messages get read marks.
    expect(hello.get_by_test_id("msg-status")).to_have_attribute("data-status", "read")
    expect(
        bob.message("Hello Alice, good to see you here.").get_by_test_id("msg-status")
    ).to_have_attribute("data-status", "read")
    expect(alice.page.get_by_test_id("unread-badge")).to_have_count(0)
    expect(bob.page.get_by_test_id("unread-badge")).to_have_count(0)
    alice.screenshot("chat-one-to-one")
    bob.screenshot("chat-one-to-one-other-side")
