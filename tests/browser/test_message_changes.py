"""Recall and edit (protocol v2) between two users: live on both sides, for a peer who
was away at the next login, and only within their windows (a server of its own with
short ones)."""

import json
import re
import time

import pytest
from playwright.sync_api import WebSocketRoute, expect

from tests.browser.ui import SHORT_WINDOW, befriended_pair, in_chat, make_group, wait_until

pytestmark = pytest.mark.browser


def log_out(client) -> None:
    client.page.get_by_test_id("logout").click()
    expect(client.page.get_by_test_id("auth-screen")).to_be_visible()


def test_a_recalled_message_shows_a_placeholder_live_and_to_a_peer_who_was_away(
    server, open_client, pair
):
    alice_user, bob_user, gid = pair
    alice, bob = in_chat(open_client, server, alice_user, bob_user)
    oops = alice.send("Sent to the wrong chat, sorry")
    kept = alice.send("This one stays")
    expect(bob.messages).to_have_count(2)
    oops_id, kept_id = alice.msg_id(oops), alice.msg_id(kept)

    alice.recall(oops)
    for client in (alice, bob):
        gone = client.by_id(oops_id)
        expect(gone.get_by_test_id("msg-recalled")).to_have_text("Message recalled")
        expect(gone.get_by_test_id("msg-content")).to_have_count(0)
        expect(gone.get_by_test_id("msg-menu-button")).to_have_count(0)
        expect(client.message("This one stays")).to_have_count(1)
    assert [(e["gid"], e["msgId"]) for e in alice.events_sent("Recall")] == [(gid, oops_id)]
    alice.screenshot("recall")

    # Bob is away while Alice recalls her newest message: he sees it at his next login,
    # in the list and in the conversation, although the sync pushes the Recall again.
    log_out(bob)
    alice.recall(kept)
    expect(alice.by_id(kept_id).get_by_test_id("msg-recalled")).to_be_visible()
    expect(alice.conv("Bob Builder").get_by_test_id("conv-preview")).to_have_text(
        "You: Message recalled"
    )
    bob.login(bob_user)
    expect(bob.conv("Alice Liddell").get_by_test_id("conv-preview")).to_have_text(
        "Message recalled"
    )
    wait_until(
        bob.page,
        lambda: {oops_id, kept_id} <= {p["msgId"] for p in bob.pushes("Recall")},
        what="the Recall pushes of the offline sync",
    )
    bob.open_conv("Alice Liddell")
    expect(bob.messages).to_have_count(2)
    for msg_id in (oops_id, kept_id):
        expect(bob.by_id(msg_id).get_by_test_id("msg-recalled")).to_have_text("Message recalled")
    expect(bob.page.get_by_test_id("msg-content")).to_have_count(0)


def test_an_edit_shows_the_new_text_and_an_edited_mark_on_both_sides_and_after_a_login(
    server, open_client, pair
):
    alice_user, bob_user, gid = pair
    alice, bob = in_chat(open_client, server, alice_user, bob_user)
    meet_id = alice.msg_id(alice.send("See you at 5"))
    meet = alice.by_id(meet_id)  # found by id: while edited, its text is in a text box
    expect(bob.message("See you at 5")).to_be_visible()
    page = alice.page

    # The menu works by keyboard: Enter opens it on its first item, End and the arrow
    # keys move, Escape closes it and gives the focus back to its button.
    button = meet.get_by_test_id("msg-menu-button")
    expect(button).to_have_attribute("aria-haspopup", "menu")
    button.focus()
    page.keyboard.press("Enter")
    menu = page.get_by_test_id("msg-menu")
    expect(menu).to_be_visible()
    expect(button).to_have_attribute("aria-expanded", "true")
    expect(menu.get_by_test_id("react-option").first).to_be_focused()
    page.keyboard.press("End")
    expect(menu.get_by_test_id("msg-action-recall")).to_be_focused()
    page.keyboard.press("ArrowUp")
    expect(menu.get_by_test_id("msg-action-edit")).to_be_focused()
    page.keyboard.press("Escape")
    expect(menu).to_be_hidden()
    expect(button).to_be_focused()
    expect(button).to_have_attribute("aria-expanded", "false")

    # Escape in the editor cancels: nothing is sent.
    alice.open_menu(meet).get_by_test_id("msg-action-edit").click()
    box = meet.get_by_test_id("msg-edit-input")
    expect(box).to_be_focused()
    expect(box).to_have_value("See you at 5")
    box.fill("Never mind")
    box.press("Escape")
    expect(box).to_have_count(0)
    expect(meet.get_by_test_id("msg-content")).to_have_text("See you at 5")
    expect(meet.get_by_test_id("msg-edited")).to_have_count(0)

    # Enter saves: the new text and an "edited" mark with its time, on both sides.
    alice.edit(meet, "See you at 6")
    for client in (alice, bob):
        edited = client.by_id(meet_id)
        expect(edited.get_by_test_id("msg-content")).to_have_text("See you at 6")
        expect(edited.get_by_test_id("msg-edited")).to_have_text("edited")
        expect(edited.get_by_test_id("msg-edited")).to_have_attribute(
            "title", re.compile(r"^Edited \S")
        )
    assert [(e["gid"], e["msgId"], e["content"]) for e in alice.events_sent("Edit")] == [
        (gid, meet_id, "See you at 6")
    ]
    expect(button).to_be_focused()
    alice.screenshot("edit")

    # Bob is away during the next edit: his next login shows it.
    log_out(bob)
    alice.edit(meet, "See you at 7, at the station")
    bob.login(bob_user)
    expect(bob.conv("Alice Liddell").get_by_test_id("conv-preview")).to_have_text(
        "See you at 7, at the station"
    )
    bob.open_conv("Alice Liddell")
    edited = bob.by_id(meet_id)
    expect(edited.get_by_test_id("msg-content")).to_have_text("See you at 7, at the station")
    expect(edited.get_by_test_id("msg-edited")).to_be_visible()
    wait_until(
        bob.page,
        lambda: any(p["msgId"] == meet_id for p in bob.pushes("Edit")),
        what="the Edit pushes of the offline sync",
    )
    expect(bob.messages).to_have_count(1)
    expect(edited.get_by_test_id("msg-content")).to_have_text("See you at 7, at the station")


class DoublingSocket:
    """Routes a page's WebSocket through the test: every Recall, Edit and React push
    reaches the page twice, as when the offline sync pushes again what came live, and
    replay() sends all of them once more, in order, as a later Login's sync would."""

    def __init__(self, page):
        self.changes: list[str] = []
        self.route: WebSocketRoute | None = None
        page.route_web_socket(re.compile(r"/ws$"), self.connect)

    def connect(self, route: WebSocketRoute) -> None:
        self.route = route
        server = route.connect_to_server()
        server.on_message(self.to_page)
        route.on_message(server.send)

    def to_page(self, message) -> None:
        self.route.send(message)
        if json.loads(message).get("event") in {"Recall", "Edit", "React"}:
            self.changes.append(message)
            self.route.send(message)

    def replay(self) -> None:
        for message in self.changes:
            self.route.send(message)


def test_changes_pushed_again_apply_once_and_those_to_messages_not_loaded_break_nothing(
    server, open_client, pair
):
    alice_user, bob_user, _ = pair
    alice = open_client(server)
    socket = DoublingSocket(alice.page)
    alice.login(alice_user)
    bob = open_client(server).login(bob_user)
    bob.open_conv("Alice Liddell")

    # Changes to a message Alice has not loaded: her list shows the newest text.
    lunch_id = bob.msg_id(bob.send("Lunch at 12?"))
    lunch = bob.by_id(lunch_id)
    bob.react(lunch, "👍")
    bob.edit(lunch, "Lunch at 12:30?")
    preview = alice.conv("Bob Builder").get_by_test_id("conv-preview")
    expect(preview).to_have_text("Lunch at 12:30?")
    wait_until(alice.page, lambda: len(socket.changes) == 2, what="the two changes pushed")
    alice.open_conv("Bob Builder")
    on_alice = alice.by_id(lunch_id)
    expect(on_alice.get_by_test_id("msg-content")).to_have_text("Lunch at 12:30?")
    expect(alice.chip(on_alice, "👍").get_by_test_id("reaction-count")).to_have_text("1")
    # The history page had them already: pushed again now, they change nothing.
    socket.replay()
    alice.send("Fine")  # its ack comes after the replayed pushes
    expect(alice.chip(on_alice, "👍").get_by_test_id("reaction-count")).to_have_text("1")
    expect(on_alice.get_by_test_id("msg-content")).to_have_text("Lunch at 12:30?")

    # Loaded: each change arrives twice and counts once.
    bob.react(lunch, "🎉")
    expect(alice.chip(on_alice, "🎉").get_by_test_id("reaction-count")).to_have_text("1")
    bob.chip(lunch, "👍").click()
    expect(alice.chip(on_alice, "👍")).to_have_count(0)
    bob.edit(lunch, "Lunch at 1?")
    expect(on_alice.get_by_test_id("msg-content")).to_have_text("Lunch at 1?")
    wait_until(alice.page, lambda: len(socket.changes) == 5, what="the five changes pushed")

    # Everything once more, oldest first: nothing changes (the 👍 stays off).
    socket.replay()
    alice.send("See you then")  # the replay came before this message's ack
    expect(on_alice.get_by_test_id("reaction-chip")).to_have_count(1)
    expect(alice.chip(on_alice, "🎉").get_by_test_id("reaction-count")).to_have_text("1")
    expect(on_alice.get_by_test_id("msg-content")).to_have_text("Lunch at 1?")
    expect(alice.messages).to_have_count(3)


def test_past_its_windows_a_message_offers_no_edit_or_recall_but_a_group_admin_recalls(
    short_windows, open_client
):
    server = short_windows
    alice_user, bob_user, _ = befriended_pair(server)
    make_group(server, alice_user, "Budget", [bob_user])
    alice = open_client(server).login(alice_user).open_conv("Budget")
    bob = open_client(server).login(bob_user).open_conv("Budget")
    draft_id = bob.msg_id(bob.send("Draft: the budget is 10k"))
    sent_at = time.monotonic()
    draft = bob.by_id(draft_id)

    # Within the windows its sender may edit and recall it; the admin may recall it.
    menu = bob.open_menu(draft)
    expect(menu.get_by_test_id("msg-action-edit")).to_be_visible()
    expect(menu.get_by_test_id("msg-action-recall")).to_be_visible()
    bob.page.keyboard.press("Escape")
    menu = alice.open_menu(alice.by_id(draft_id))
    expect(menu.get_by_test_id("msg-action-recall")).to_be_visible()
    expect(menu.get_by_test_id("msg-action-edit")).to_have_count(0)
    alice.page.keyboard.press("Escape")

    # An edit begun in time but saved too late is refused, and the refusal is shown.
    bob.open_menu(draft).get_by_test_id("msg-action-edit").click()
    box = draft.get_by_test_id("msg-edit-input")
    expect(box).to_be_focused()
    assert time.monotonic() - sent_at < SHORT_WINDOW, "too slow to test inside the window"
    bob.page.wait_for_timeout((sent_at + SHORT_WINDOW + 1 - time.monotonic()) * 1000)
    box.fill("Draft: the budget is 12k")
    box.press("Enter")
    refusal = bob.page.get_by_test_id("toast").filter(has_text="Could not edit")
    expect(refusal).to_contain_text("too late")
    expect(refusal).to_contain_text(f"within {SHORT_WINDOW} s")  # the server's detail
    expect(draft.get_by_test_id("msg-content")).to_have_text("Draft: the budget is 10k")
    expect(draft.get_by_test_id("msg-edited")).to_have_count(0)

    # Past the windows the menu offers neither; the group's admin still recalls.
    menu = bob.open_menu(draft)
    expect(menu.get_by_test_id("msg-action-reply")).to_be_visible()
    expect(menu.get_by_test_id("msg-action-edit")).to_have_count(0)
    expect(menu.get_by_test_id("msg-action-recall")).to_have_count(0)
    bob.page.keyboard.press("Escape")
    alice.recall(alice.by_id(draft_id))
    expect(draft.get_by_test_id("msg-recalled")).to_be_visible()
