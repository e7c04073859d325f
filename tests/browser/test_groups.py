"""A group of three: created from friends in the UI, chatted in live, managed by its admin."""

import os
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.browser.ui import befriend, exact, make_account, make_group
from tests.live import api

pytestmark = pytest.mark.browser

README_SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "screenshot.png"


def test_group_of_three_is_created_from_friends_and_chats_live(server, open_client):
    alice_user = make_account(server, "Alice Liddell")
    bob_user = make_account(server, "Bob Builder")
    carol_user = make_account(server, "Carol Danvers")
    befriend(server, alice_user, bob_user)
    befriend(server, carol_user, alice_user)
    alice = open_client(server).login(alice_user)
    bob = open_client(server).login(bob_user)
    carol = open_client(server).login(carol_user)

    # Alice creates the group from her friends list.
    alice.page.get_by_test_id("new-group").click()
    dialog = alice.page.get_by_test_id("group-create-dialog")
    expect(dialog).to_be_visible()
    dialog.get_by_label("Group name").fill("Weekend plans")
    dialog.get_by_label("Bob Builder").check()
    dialog.get_by_label("Carol Danvers").check()
    alice.screenshot("group-create")
    dialog.get_by_test_id("group-create-submit").click()
    expect(dialog).to_be_hidden()
    expect(alice.page.get_by_test_id("chat-name")).to_have_text("Weekend plans")
    expect(alice.page.get_by_test_id("chat-sub")).to_have_text("3 members")

    # Its first message makes it appear, unread, for the other two.
    alice.send("Who is in for a hike on Saturday?")
    expect(bob.badge("Weekend plans")).to_have_text("1")
    expect(carol.badge("Weekend plans")).to_have_text("1")

    bob.open_conv("Weekend plans")
    bob.send("Count me in! I'll bring snacks.")
    reply = alice.message("Count me in! I'll bring snacks.")
    expect(reply.get_by_test_id("msg-sender")).to_have_text("Bob Builder")
    expect(carol.badge("Weekend plans")).to_have_text("2")

    carol.open_conv("Weekend plans")
    expect(carol.messages).to_have_count(2)
    expect(carol.badge("Weekend plans")).to_have_count(0)
    carol.send("Me too. Meet at the station at 9?")
    from_carol = alice.message("Me too. Meet at the station at 9?")
    expect(from_carol.get_by_test_id("msg-sender")).to_have_text("Carol Danvers")
    expect(bob.message("Me too. Meet at the station at 9?")).to_be_visible()
    alice.send("Perfect, see you both there.")
    for client in (bob, carol):
        expect(client.message("Perfect, see you both there.")).to_be_visible()
        expect(client.messages).to_have_count(4)
    first = alice.message("Who is in for a hike on Saturday?")
    expect(first.get_by_test_id("msg-status")).to_have_attribute("data-status", "read")

    expect(alice.page.get_by_test_id("conv-item")).to_have_count(3)
    alice.screenshot("chat-group")
    if os.environ.get("RIM_UPDATE_SCREENSHOT"):
        alice.screenshot("readme", path=README_SCREENSHOT)


def test_group_admin_renames_and_changes_members_and_a_member_leaves(server, open_client):
    alice_user = make_account(server, "Alice Liddell")
    bob_user = make_account(server, "Bob Builder")
    carol_user = make_account(server, "Carol Danvers")
    befriend(server, alice_user, bob_user)
    befriend(server, alice_user, carol_user)
    alice = open_client(server).login(alice_user)

    alice.page.get_by_test_id("new-group").click()
    dialog = alice.page.get_by_test_id("group-create-dialog")
    dialog.get_by_label("Group name").fill("Book club")
    dialog.get_by_label("Bob Builder").check()
    dialog.get_by_test_id("group-create-submit").click()
    expect(alice.page.get_by_test_id("chat-sub")).to_have_text("2 members")

    # Details: Alice is the admin; she renames the group and adds Carol.
    alice.page.get_by_test_id("chat-info").click()
    info = alice.page.get_by_test_id("group-info-dialog")
    members = info.get_by_test_id("member-item")
    expect(members).to_have_count(2)
    expect(members.filter(has_text="Alice Liddell").get_by_test_id("member-admin")).to_be_visible()
    info.get_by_label("Group name").fill("Sci-fi book club")
    info.get_by_test_id("group-rename-submit").click()
    expect(alice.page.get_by_test_id("chat-name")).to_have_text("Sci-fi book club")
    expect(alice.conv("Sci-fi book club")).to_be_visible()
    info.get_by_label("Carol Danvers").check()
    info.get_by_test_id("group-add-submit").click()
    expect(members).to_have_count(3)
    alice.screenshot("group-details")
    members.filter(has_text="Carol Danvers").get_by_test_id("member-remove").click()
    expect(members).to_have_count(2)
    info.get_by_role("button", name="Close").click()
    expect(alice.page.get_by_test_id("chat-sub")).to_have_text("2 members")

    # Bob, a plain member, sees the new name, cannot manage the group, and leaves it.
    bob = open_client(server).login(bob_user)
    bob.open_conv("Sci-fi book club")
    bob.page.get_by_test_id("chat-info").click()
    bob_info = bob.page.get_by_test_id("group-info-dialog")
    expect(bob_info.get_by_test_id("member-item")).to_have_count(2)
    expect(bob_info.get_by_test_id("group-rename-submit")).to_be_hidden()
    expect(bob_info.get_by_test_id("member-remove")).to_have_count(0)
    leave = bob_info.get_by_test_id("group-leave")
    leave.click()
    expect(leave).to_have_text(exact("Really leave “Sci-fi book club”?"))
    leave.click()
    expect(bob_info).to_be_hidden()
    expect(bob.conv("Sci-fi book club")).to_have_count(0)
    expect(bob.page.get_by_test_id("pane-empty")).to_be_visible()

    # Carol was removed: the group is not hers; Alice is alone in it now.
    carol = open_client(server).login(carol_user)
    expect(carol.conv("Alice Liddell")).to_be_visible()
    expect(carol.conv("Sci-fi book club")).to_have_count(0)
    alice.page.get_by_test_id("chat-info").click()
    expect(info.get_by_test_id("member-item")).to_have_count(1)


def test_a_message_the_server_refuses_is_marked_not_sent_with_the_reason(server, open_client):
    alice_user = make_account(server, "Alice Liddell")
    bob_user = make_account(server, "Bob Builder")
    befriend(server, alice_user, bob_user)
    gid = make_group(server, bob_user, "Short-lived", [alice_user])
    alice = open_client(server).login(alice_user)
    alice.open_conv("Short-lived")
    alice.send("Still here")

    # Bob removes Alice while her conversation is open; her next message is refused.
    api(
        server.http_url,
        "group/user/change",
        {"gid": gid, "uids": [alice_user.uid], "opType": 2},
        token=bob_user.token,
    )
    alice.composer.fill("Am I still in?")
    alice.composer.press("Enter")
    refused = alice.message("Am I still in?")
    expect(refused.get_by_test_id("msg-status")).to_have_attribute("data-status", "failed")
    expect(refused.get_by_test_id("msg-failed")).to_contain_text("Not sent:")
    expect(refused.get_by_test_id("msg-failed")).to_contain_text(str(gid))  # the server's detail
    expect(refused).not_to_have_attribute("data-msg-id", re.compile(r"."))
    expect(alice.page.get_by_role("alert").filter(has_text="Message not sent")).to_be_visible()
    ack = next(f for f in alice.frames_received if f.get("kind") == "Ack" and f["content"] != "Ok")
    assert ack["content"] == "not_member"
    assert ack["serverMsgId"] is None
