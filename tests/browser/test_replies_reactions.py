"""Replies and reactions (protocol v2) between two users, seen on both sides."""

import re

import pytest
from playwright.sync_api import expect

from tests.browser.ui import in_chat, send_over_ws

pytestmark = pytest.mark.browser


def test_a_reply_quotes_its_original_on_both_sides_and_the_quote_jumps_to_it(
    server, open_client, pair
):
    alice_user, bob_user, gid = pair
    texts = [f"message {n:02d}" for n in range(1, 41)]
    ids = send_over_ws(server, bob_user, gid, texts)
    alice, bob = in_chat(open_client, server, alice_user, bob_user)
    expect(alice.messages).to_have_count(30)
    page = alice.page

    # "Reply" puts a quote bar above the composer; its close button and Escape take it away.
    bar = page.get_by_test_id("reply-bar")
    alice.open_menu(alice.by_id(ids[-2])).get_by_test_id("msg-action-reply").click()
    expect(bar).to_be_visible()
    expect(bar.get_by_test_id("reply-text")).to_have_text("message 39")
    expect(alice.composer).to_be_focused()
    bar.get_by_test_id("reply-cancel").click()
    expect(bar).to_be_hidden()
    alice.open_menu(alice.by_id(ids[-2])).get_by_test_id("msg-action-reply").click()
    alice.composer.press("Escape")
    expect(bar).to_be_hidden()

    alice.open_menu(alice.by_id(ids[-1])).get_by_test_id("msg-action-reply").click()
    expect(bar.get_by_test_id("reply-sender")).to_have_text("Replying to Bob Builder")
    expect(bar.get_by_test_id("reply-text")).to_have_text("message 40")
    reply_id = alice.msg_id(alice.send("Sounds good"))
    expect(bar).to_be_hidden()
    (sent,) = [e for e in alice.events_sent("Msg") if e["content"] == "Sounds good"]
    assert sent["replyTo"] == ids[-1]
    for client, sender in ((alice, "Bob Builder"), (bob, "You")):
        quote = client.by_id(reply_id).get_by_test_id("msg-quote")
        expect(quote.get_by_test_id("quote-sender")).to_have_text(sender)
        expect(quote.get_by_test_id("quote-text")).to_have_text("message 40")
    alice.screenshot("reply")

    # Bob's click on the quote takes him to the original, highlighted and focused.
    bob.by_id(reply_id).get_by_test_id("msg-quote").click()
    original = bob.by_id(ids[-1])
    expect(original).to_have_class(re.compile(r"\bhighlight\b"))
    expect(original).to_be_focused()
    expect(original).to_be_in_viewport()

    # A reply to a message further back than the loaded page: the quote says so, and
    # its click loads older pages until the original is there.
    (old_reply,) = send_over_ws(server, bob_user, gid, ["Still true?"], reply_to=ids[0])
    quote = alice.by_id(old_reply).get_by_test_id("msg-quote")
    expect(quote.get_by_test_id("quote-sender")).to_have_text("Earlier message")
    expect(alice.by_id(ids[0])).to_have_count(0)
    quote.click()
    first = alice.by_id(ids[0])
    expect(first).to_be_in_viewport()
    expect(first).to_have_class(re.compile(r"\bhighlight\b"))
    expect(alice.messages).to_have_count(42)
    expect(quote.get_by_test_id("quote-sender")).to_have_text("Bob Builder")
    expect(quote.get_by_test_id("quote-text")).to_have_text("message 01")

    # A recalled original is quoted as recalled, on the other side too.
    bob.recall(bob.by_id(ids[-1]))
    for client in (alice, bob):
        quote = client.by_id(reply_id).get_by_test_id("msg-quote")
        expect(quote.get_by_test_id("quote-text")).to_have_text("Message recalled")


def test_reactions_show_as_chips_with_counts_on_both_sides_and_toggle(server, open_client, pair):
    alice_user, bob_user, gid = pair
    alice, bob = in_chat(open_client, server, alice_user, bob_user)
    pizza_id = alice.msg_id(alice.send("Pizza tonight?"))
    on_alice, on_bob = alice.by_id(pizza_id), bob.by_id(pizza_id)
    expect(on_bob).to_be_visible()

    def chips_are(emoji: str, count: int, mine_for: set) -> None:
        for name, client, message in (("alice", alice, on_alice), ("bob", bob, on_bob)):
            chip = client.chip(message, emoji)
            if count == 0:
                expect(chip).to_have_count(0)
                continue
            expect(chip.get_by_test_id("reaction-count")).to_have_text(str(count))
            expect(chip).to_have_attribute("aria-pressed", str(name in mine_for).lower())

    bob.react(on_bob, "👍")
    chips_are("👍", 1, {"bob"})
    expect(bob.chip(on_bob, "👍")).to_have_class(re.compile(r"\bmine\b"))
    expect(alice.chip(on_alice, "👍")).not_to_have_class(re.compile(r"\bmine\b"))

    alice.chip(on_alice, "👍").click()  # a chip adds one's own
    chips_are("👍", 2, {"alice", "bob"})
    alice.react(on_alice, "🎉")
    chips_are("🎉", 1, {"alice"})
    alice.screenshot("reactions")

    bob.chip(on_bob, "👍").click()  # and takes it back
    chips_are("👍", 1, {"alice"})
    alice.react(on_alice, "🎉")  # the picker toggles too
    chips_are("🎉", 0, set())
    chips_are("👍", 1, {"alice"})

    reacts = [(e["gid"], e["msgId"], e["content"]) for e in alice.events_sent("React")]
    assert reacts == [(gid, pizza_id, "👍"), (gid, pizza_id, "🎉"), (gid, pizza_id, "🎉")]

    # A reload (history) shows the same: one 👍, Alice's.
    bob.page.reload()
    bob.expect_online()
    bob.open_conv("Alice Liddell")
    on_bob = bob.by_id(pizza_id)
    expect(bob.chip(on_bob, "👍").get_by_test_id("reaction-count")).to_have_text("1")
    expect(bob.chip(on_bob, "👍")).to_have_attribute("aria-pressed", "false")
    expect(on_bob.get_by_test_id("reaction-chip")).to_have_count(1)
