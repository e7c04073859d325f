"""Hostile message content is shown as text and never runs."""

import re

import pytest
from playwright.sync_api import expect

from tests.browser.ui import befriend, events_over_ws, make_account, send_over_ws

pytestmark = pytest.mark.browser

SCRIPT = "<script>window.__xss = 'script'</script>"
IMG = "<img src=x onerror=\"window.__xss = 'onerror'\">"
RICH = "**Hi** <img src=x onerror=\"window.__xss = 'rich'\"> <b onmouseover=alert(1)>b</b>"
SVG = "<svg onload=\"window.__xss = 'svg'\"></svg>"
BAD_IMAGES = [
    "javascript:window.__xss = 'image'",
    "x\" onerror=\"window.__xss = 'attribute'",
    "<img src=x onerror=\"window.__xss = 'image-html'\">",
]


def assert_nothing_ran(client) -> None:
    page = client.page
    assert page.evaluate("typeof window.__xss") == "undefined"
    messages = page.get_by_test_id("msg-list")
    expect(messages.locator("script, svg, iframe, object, embed")).to_have_count(0)
    expect(messages.locator("[onerror], [onload], [onmouseover]")).to_have_count(0)
    expect(messages.locator("a[href^='javascript:' i], img[src^='javascript:' i]")).to_have_count(0)
    expect(page.locator("body [onerror], body [onload]")).to_have_count(0)


def test_hostile_text_rich_text_and_image_messages_render_as_text_and_run_nothing(
    server, open_client
):
    alice_user = make_account(server, "Alice Liddell")
    mallory_user = make_account(server, "Mallory <img src=x onerror=alert(1)>")
    gid = befriend(server, mallory_user, alice_user)
    alice = open_client(server).login(alice_user)
    mallory = open_client(server).login(mallory_user)

    mallory.open_conv("Alice Liddell")
    mallory.send(SCRIPT)
    mallory.send(IMG)
    mallory.page.get_by_test_id("rich-toggle").click()
    expect(mallory.page.get_by_test_id("rich-toggle")).to_have_attribute("aria-pressed", "true")
    mallory.send(RICH, shown=RICH.replace("**", ""))
    send_over_ws(server, mallory_user, gid, [SVG], kind="RichText")
    send_over_ws(server, mallory_user, gid, BAD_IMAGES, kind="Image")

    # The hostile display name is text too, in the list and in the header.
    peer = "Mallory <img src=x onerror=alert(1)>"
    expect(alice.badge(peer)).to_have_text("7")
    expect(alice.conv(peer).get_by_test_id("conv-name")).to_have_text(peer)
    expect(alice.conv(peer).get_by_test_id("conv-preview")).to_have_text("Photo")
    expect(alice.page.get_by_test_id("conv-list").locator("img")).to_have_count(0)
    alice.open_conv(peer)
    expect(alice.page.get_by_test_id("chat-name")).to_have_text(peer)
    expect(alice.messages).to_have_count(7)

    contents = alice.page.get_by_test_id("msg-content")
    expect(contents.nth(0)).to_have_text(SCRIPT)
    expect(contents.nth(1)).to_have_text(IMG)
    # The safe subset still works: **Hi** is bold, the rest is literal text.
    expect(contents.nth(2)).to_have_text(RICH.replace("**", ""))
    expect(contents.nth(2).locator("strong")).to_have_text("Hi")
    expect(contents.nth(3)).to_have_text(SVG)
    for n, bad in enumerate(BAD_IMAGES, start=4):
        expect(contents.nth(n)).to_have_text(bad)
    expect(alice.page.get_by_test_id("msg-image")).to_have_count(0)

    # Hovering and clicking the content triggers nothing either.
    contents.nth(2).hover()
    contents.nth(2).click()
    assert_nothing_ran(alice)
    assert_nothing_ran(mallory)
    alice.screenshot("xss-as-text")


def test_a_hostile_reaction_and_a_hostile_quoted_original_render_as_text(server, open_client):
    alice_user = make_account(server, "Alice Liddell")
    mallory_user = make_account(server, "Mallory")
    gid = befriend(server, mallory_user, alice_user)
    emoji = 'é"><img/src=x>'  # one "emoji" to the server: not ASCII, no white space
    (original,) = send_over_ws(server, mallory_user, gid, [IMG])
    (reply,) = send_over_ws(server, mallory_user, gid, ["Look at this"], reply_to=original)
    react = ("React", {"gid": gid, "msgId": original, "content": emoji})
    assert [ack["content"] for ack in events_over_ws(server, mallory_user, [react])] == ["Ok"]

    alice = open_client(server).login(alice_user)
    alice.open_conv("Mallory")
    expect(alice.by_id(reply).get_by_test_id("quote-text")).to_have_text(IMG)
    chip = alice.by_id(original).get_by_test_id("reaction-chip")
    expect(chip).to_have_attribute("data-emoji", emoji)
    expect(chip).to_have_text(f"{emoji}1")
    chip.click()  # Alice's own, with the same text
    expect(chip.get_by_test_id("reaction-count")).to_have_text("2")
    expect(chip).to_have_attribute("aria-pressed", "true")
    expect(chip).to_be_focused()
    expect(alice.page.get_by_test_id("msg-list").locator("img")).to_have_count(0)
    assert_nothing_ran(alice)


def test_the_page_forbids_inline_script_by_content_security_policy(server, browser):
    # The tests' contexts bypass CSP to prove the client safe without it; this one does not.
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(server.http_url + "/")
        csp = page.locator("meta[http-equiv='Content-Security-Policy']")
        expect(csp).to_have_attribute("content", re.compile(r"script-src 'self';"))
        page.evaluate(
            """() => {
                const s = document.createElement('script');
                s.textContent = 'window.__inline = 1';
                document.body.append(s);
            }"""
        )
        assert page.evaluate("typeof window.__inline") == "undefined"
    finally:
        context.close()


def test_image_messages_show_the_picture(server, open_client):
    alice_user = make_account(server, "Alice Liddell")
    bob_user = make_account(server, "Bob Builder")
    befriend(server, alice_user, bob_user)
    alice = open_client(server).login(alice_user)
    bob = open_client(server).login(bob_user)
    bob.open_conv("Alice Liddell")
    alice.open_conv("Bob Builder")

    picture = f"{server.http_url}/static/rim/logo.svg"
    bob.page.get_by_test_id("image-button").click()
    dialog = bob.page.get_by_test_id("image-dialog")
    dialog.get_by_label("Image URL").fill("javascript:alert(1)")
    dialog.get_by_test_id("image-submit").click()
    expect(dialog.get_by_role("alert")).to_contain_text("http")
    dialog.get_by_label("Image URL").fill(picture)
    dialog.get_by_test_id("image-submit").click()
    expect(dialog).to_be_hidden()

    image = alice.page.get_by_test_id("msg-image")
    expect(image).to_have_attribute("src", picture)
    expect(image).to_have_js_property("complete", True)
    assert image.evaluate("img => img.naturalWidth") > 0
    expect(alice.conv("Bob Builder").get_by_test_id("conv-preview")).to_have_text("Photo")

    # A change to the message (a reaction) redraws it around the picture, not the picture.
    image.evaluate("img => { img.dataset.kept = 'yes'; }")
    bob.react(bob.messages.filter(has=bob.page.get_by_test_id("msg-image")), "❤️")
    expect(alice.page.get_by_test_id("reaction-chip")).to_have_attribute("data-emoji", "❤️")
    expect(image).to_have_attribute("data-kept", "yes")
