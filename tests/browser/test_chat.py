"""One-to-one chat between two befriended users: unread badges, read marks, history."""

import re

import pytest
from playwright.sync_api import expect

from tests.browser.ui import send_over_ws, wait_until

pytestmark = pytest.mark.browser

EVENTS = {"Login", "Msg", "Read", "Heart", "Logout", "Ack", "Typing"}  # Typing: v2, while typing


def test_unread_badge_rises_while_away_and_clears_once_read(server, open_client, pair):
    alice_user, bob_user, _ = pair
    alice = open_client(server).login(alice_user)
    bob = open_client(server).login(bob_user)
    # The conversation exists before its first message (the server made it on accept).
    expect(alice.conv("Bob Builder")).to_be_visible()
    bob.open_conv("Alice Liddell")

    sent = []
    for n, text in enumerate(["Are you there?", "Lunch at noon?", "I'll book a table."], 1):
        sent.append(bob.send(text))
        expect(alice.badge("Bob Builder")).to_have_text(str(n))
    expect(alice.page.get_by_test_id("chats-count")).to_have_text("3")
    expect(alice.page).to_have_title("(3) rim")
    expect(alice.conv("Bob Builder").get_by_test_id("conv-preview")).to_have_text(
        "I'll book a table."
    )
    for message in sent:
        expect(message.get_by_test_id("msg-status")).to_have_attribute("data-status", "sent")
    alice.screenshot("unread-badge")

    alice.open_conv("Bob Builder")
    expect(alice.messages).to_have_count(3)
    expect(alice.badge("Bob Builder")).to_have_count(0)
    expect(alice.page.get_by_test_id("chats-count")).to_be_hidden()
    expect(alice.page).to_have_title("rim")
    for message in sent:
        expect(message.get_by_test_id("msg-status")).to_have_attribute("data-status", "read")

    # The read watermark is on the server: a reload shows nothing unread.
    alice.page.reload()
    alice.expect_online()
    expect(alice.conv("Bob Builder")).to_be_visible()
    expect(alice.page.get_by_test_id("unread-badge")).to_have_count(0)


def test_history_survives_a_reload_and_older_pages_load_on_demand(server, open_client, pair):
    alice_user, bob_user, gid = pair
    texts = [f"message {n:02d}" for n in range(1, 41)]
    send_over_ws(server, bob_user, gid, texts)

    alice = open_client(server).login(alice_user)
    # 40 unread, each counted once although the offline sync pushed them at login too.
    expect(alice.badge("Bob Builder")).to_have_text("40")
    alice.open_conv("Bob Builder")
    expect(alice.messages).to_have_count(30)
    expect(alice.messages.first).to_contain_text("message 11")
    expect(alice.messages.last).to_contain_text("message 40")

    older = alice.page.get_by_test_id("load-older")
    older.click()
    expect(alice.messages).to_have_count(40)
    expect(alice.messages.first).to_contain_text("message 01")
    expect(older).to_be_hidden()
    ids = [int(i) for i in alice.messages.evaluate_all("els => els.map(e => e.dataset.msgId)")]
    assert ids == sorted(ids)
    assert len(set(ids)) == 40

    alice.send("Caught up, thanks!")
    alice.page.reload()
    alice.expect_online()
    alice.open_conv("Bob Builder")
    expect(alice.messages).to_have_count(30)
    last = alice.messages.last
    expect(last).to_contain_text("Caught up, thanks!")
    expect(last).to_have_class(re.compile(r"\bmine\b"))
    expect(last.get_by_test_id("msg-status")).to_have_attribute("data-status", "sent")
    expect(alice.message("message 40")).to_have_count(1)


def test_every_client_event_has_a_fresh_client_msg_id_and_gets_one_ok_ack(
    server, open_client, pair
):
    alice_user, bob_user, gid = pair
    alice = open_client(server).login(alice_user)
    bob = open_client(server).login(bob_user)
    bob.open_conv("Alice Liddell")

    # Pushed while Alice looks elsewhere: acknowledged as delivered (Ack), not read.
    ping = bob.send("ping")
    expect(alice.badge("Bob Builder")).to_have_text("1")
    wait_until(
        alice.page,
        lambda: any(f["event"] == "Ack" and f["body"]["gid"] == gid for f in alice.frames_sent),
        what="Alice's Ack",
    )
    expect(ping.get_by_test_id("msg-status")).to_have_attribute("data-status", "sent")

    # Opened: read (Read), which Bob sees as a read mark.
    alice.open_conv("Bob Builder")
    expect(ping.get_by_test_id("msg-status")).to_have_attribute("data-status", "read")
    alice.send("pong")
    alice.page.get_by_test_id("logout").click()
    expect(alice.page.get_by_test_id("auth-screen")).to_be_visible()

    sent = alice.frames_sent
    events = [frame["event"] for frame in sent]
    assert set(events) <= EVENTS
    assert {"Login", "Ack", "Read", "Msg", "Logout"} <= set(events), events
    assert events[0] == "Login"
    assert events[-1] == "Logout"
    ids = [frame["body"]["clientMsgId"] for frame in sent]
    assert all(isinstance(i, str) and 0 < len(i) <= 64 for i in ids)
    assert len(set(ids)) == len(ids), "a clientMsgId was reused"
    assert all(frame["body"]["uid"] == alice_user.uid for frame in sent)
    acks = [f for f in alice.frames_received if "event" not in f and f.get("kind") == "Ack"]
    for i in ids:
        answers = [a for a in acks if a["clientMsgId"] == i]
        assert len(answers) == 1, (i, answers)
        assert answers[0]["content"] == "Ok", answers[0]
    msg = next(f for f in sent if f["event"] == "Msg")["body"]
    assert (msg["kind"], msg["gid"], msg["content"]) == ("Text", gid, "pong")
    read = next(f for f in sent if f["event"] == "Read")["body"]
    assert (read["gid"], read["msgId"]) == (gid, int(ping.get_attribute("data-msg-id")))


def test_heart_is_sent_every_30_seconds_and_acked(server, open_client, pair):
    alice_user, _, _ = pair
    alice = open_client(server)
    alice.page.clock.install()  # real time keeps flowing; fast_forward jumps ahead
    alice.login(alice_user)

    def hearts():
        return [f["body"]["clientMsgId"] for f in alice.frames_sent if f["event"] == "Heart"]

    def acked_ok():
        return {f.get("clientMsgId") for f in alice.frames_received if f.get("content") == "Ok"}

    assert hearts() == []
    for n in (1, 2):
        # (each ack is awaited before jumping again: a 20 s silence would be a dead link)
        alice.page.clock.fast_forward("00:30")
        wait_until(alice.page, lambda n=n: len(hearts()) == n, what=f"Heart {n}")
        wait_until(alice.page, lambda: set(hearts()) <= acked_ok(), what=f"an Ok for Heart {n}")
    expect(alice.banner).to_have_attribute("data-state", "online")
    assert [f["event"] for f in alice.frames_sent].count("Login") == 1


def test_my_message_from_another_device_shows_as_mine_on_this_one(server, open_client, pair):
    alice_user, bob_user, _ = pair
    laptop = open_client(server).login(alice_user)
    phone = open_client(server, viewport={"width": 390, "height": 800}).login(alice_user)
    bob = open_client(server).login(bob_user)
    laptop.open_conv("Bob Builder")
    phone.open_conv("Bob Builder")
    bob.open_conv("Alice Liddell")

    laptop.send("Sent from my laptop")
    on_phone = phone.message("Sent from my laptop")
    expect(on_phone).to_have_class(re.compile(r"\bmine\b"))
    expect(bob.message("Sent from my laptop")).to_have_count(1)
    # bob has the conversation open, so his Read may already have turned it to "read".
    expect(on_phone.get_by_test_id("msg-status")).to_have_attribute(
        "data-status", re.compile(r"^(sent|read)$")
    )
    bob.send("Got it")
    for device in (laptop, phone):
        expect(device.message("Got it")).to_have_class(re.compile(r"\btheirs\b"))
        expect(device.message("Sent from my laptop")).to_have_count(1)
    expect(on_phone.get_by_test_id("msg-status")).to_have_attribute("data-status", "read")
    expect(phone.page.get_by_test_id("unread-badge")).to_have_count(0)
