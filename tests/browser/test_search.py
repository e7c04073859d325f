"""Message search in the web client: results from every conversation with the matched
words marked, the conversation and sender named, a result that opens its conversation
at the message (pages back), the empty and no-result states, and more results."""

import re

import pytest
from playwright.sync_api import expect

from tests.browser.ui import Client, make_account, make_group, send_over_ws

pytestmark = pytest.mark.browser

TARGET = "Have you seen the zebra crossing on Main Street?"
# An emoji outside the BMP first: the server's offsets count code points, not UTF-16 units.
IN_GROUP = "🦓🦓 Zebra stripes are all different, zebra by zebra"


def search_for(client: Client, words: str) -> None:
    client.page.get_by_test_id("tab-search").click()
    box = client.page.get_by_label("Search messages")
    box.fill(words)
    box.press("Enter")


def result(client: Client, msg_id: int):
    return client.page.locator(f'[data-testid="msg-search-result"][data-msg-id="{msg_id}"]')


def test_results_are_marked_and_named_and_one_opens_its_conversation_at_the_message(
    server, open_client, pair
):
    alice_user, bob_user, gid = pair
    carol_user = make_account(server, "Carol Danvers")
    club = make_group(server, alice_user, "Book club", [bob_user, carol_user])
    (target,) = send_over_ws(server, bob_user, gid, [TARGET])
    send_over_ws(server, bob_user, gid, [f"filler {n:02d}" for n in range(70)])
    (in_group,) = send_over_ws(server, carol_user, club, [IN_GROUP])
    (mine,) = send_over_ws(server, alice_user, club, ["No stripes here, only a ZEBRA"])

    alice = open_client(server).login(alice_user)
    page = alice.page
    page.get_by_test_id("tab-search").click()
    status = page.get_by_test_id("msg-search-status")
    expect(status).to_have_text("Find words in the messages of all your conversations.")
    search_for(alice, "zebra")
    expect(page.get_by_test_id("msg-search-result")).to_have_count(3)
    expect(status).to_have_text("3 messages found.")

    hit = result(alice, target)
    expect(hit.get_by_test_id("result-conv")).to_have_text("Bob Builder")
    expect(hit.get_by_test_id("result-sender")).to_have_text("Bob Builder")
    expect(hit.get_by_test_id("result-text")).to_have_text(TARGET)
    expect(hit.locator("mark")).to_have_text(["zebra"])

    hit = result(alice, in_group)
    expect(hit.get_by_test_id("result-conv")).to_have_text("Book club")
    expect(hit.get_by_test_id("result-sender")).to_have_text("Carol Danvers")
    expect(hit.locator("mark")).to_have_text(["Zebra", "zebra", "zebra"])
    text = hit.get_by_test_id("result-text")
    assert text.evaluate("el => el.firstChild.textContent") == "🦓🦓 "
    expect(result(alice, mine).get_by_test_id("result-sender")).to_have_text("You")
    expect(result(alice, mine).locator("mark")).to_have_text(["ZEBRA"])
    expect(
        page.get_by_test_id("msg-search-results").locator("script, img, [onerror]")
    ).to_have_count(0)
    alice.screenshot("search-results")

    # Chosen from the keyboard: the chat opens, older pages load, the message is shown.
    result(alice, target).focus()
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("chat-name")).to_have_text("Bob Builder")
    message = alice.by_id(target)
    expect(message).to_be_visible()
    expect(message).to_have_class(re.compile(r"\bhighlight\b"))
    expect(message).to_be_focused()
    expect(message).to_be_in_viewport()
    assert alice.messages.count() == 71

    # From a mouse, another conversation.
    result(alice, in_group).click()
    expect(page.get_by_test_id("chat-name")).to_have_text("Book club")
    expect(alice.by_id(in_group)).to_be_focused()

    # Nothing found says so.
    search_for(alice, "okapi")
    expect(status).to_have_text("No messages match “okapi”.")
    expect(page.get_by_test_id("msg-search-result")).to_have_count(0)
    expect(page.get_by_test_id("msg-search-more")).to_be_hidden()


def test_more_results_load_page_by_page_as_the_user_types(server, open_client, pair):
    alice_user, bob_user, gid = pair
    ids = send_over_ws(server, bob_user, gid, [f"apple number {n}" for n in range(25)])
    alice = open_client(server).login(alice_user)
    page = alice.page

    # Typing searches once the typing pauses, without Enter.
    page.get_by_test_id("tab-search").click()
    page.get_by_label("Search messages").press_sequentially("apple", delay=30)
    results = page.get_by_test_id("msg-search-result")
    expect(results).to_have_count(20)
    expect(page.get_by_test_id("msg-search-status")).to_have_text("20+ messages found; more below.")
    more = page.get_by_test_id("msg-search-more")
    more.click()
    expect(results).to_have_count(25)
    expect(more).to_be_hidden()
    expect(results.nth(20)).to_be_focused()
    shown = {int(r.get_attribute("data-msg-id")) for r in results.all()}
    assert shown == set(ids)
    expect(page.get_by_test_id("msg-search-status")).to_have_text("25 messages found.")

    # Clearing the box empties the list.
    page.get_by_label("Search messages").fill("")
    expect(results).to_have_count(0)
    expect(page.get_by_test_id("msg-search-status")).to_have_text(
        "Find words in the messages of all your conversations."
    )
