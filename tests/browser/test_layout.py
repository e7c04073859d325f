"""Usable from 375 px to 1440 px, and by keyboard and screen reader."""

import pytest
from playwright.sync_api import expect

from tests.browser.ui import befriend, make_account

pytestmark = pytest.mark.browser

PHONE = {"width": 375, "height": 740}
DESKTOP = {"width": 1440, "height": 900}


def no_horizontal_scroll(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def test_on_a_375px_phone_the_list_and_the_conversation_take_turns(server, open_client):
    alice_user = make_account(server, "Alice Liddell")
    bob_user = make_account(server, "Bob Builder")
    befriend(server, alice_user, bob_user)
    alice = open_client(server, viewport=PHONE).login(alice_user)
    bob = open_client(server).login(bob_user)
    bob.open_conv("Alice Liddell")
    bob.send("Hi from a big screen")

    page = alice.page
    sidebar = page.get_by_role("complementary", name="Conversations and contacts")
    pane = page.get_by_role("main", name="Conversation")
    expect(alice.badge("Bob Builder")).to_have_text("1")
    expect(sidebar).to_be_visible()
    expect(pane).to_be_hidden()
    assert no_horizontal_scroll(page)
    alice.screenshot("phone-list")

    alice.conv("Bob Builder").click()
    expect(pane).to_be_visible()
    expect(sidebar).to_be_hidden()
    expect(alice.message("Hi from a big screen")).to_be_visible()
    back = page.get_by_test_id("back")
    expect(back).to_be_visible()
    alice.send("Hi from a phone, with a fairly long line of text that has to wrap nicely")
    expect(bob.message("Hi from a big screen").get_by_test_id("msg-status")).to_have_attribute(
        "data-status", "read"
    )
    expect(
        bob.message("Hi from a phone, with a fairly long line of text that has to wrap nicely")
    ).to_be_visible()
    assert no_horizontal_scroll(page)
    composer = page.get_by_test_id("composer").bounding_box()
    assert composer["x"] >= 0
    assert composer["x"] + composer["width"] <= PHONE["width"]
    assert composer["y"] + composer["height"] <= PHONE["height"]
    alice.screenshot("phone-chat")

    # While Alice is back on the list, new messages count as unread again.
    back.click()
    expect(sidebar).to_be_visible()
    expect(pane).to_be_hidden()
    bob.send("Still there?")
    expect(alice.badge("Bob Builder")).to_have_text("1")

    # Growing the window to desktop size shows both side by side.
    page.set_viewport_size(DESKTOP)
    expect(pane).to_be_visible()
    expect(sidebar).to_be_visible()
    expect(back).to_be_hidden()
    expect(alice.badge("Bob Builder")).to_have_count(0)
    assert no_horizontal_scroll(page)


def test_keyboard_only_use_and_screen_reader_announcements(server, open_client):
    alice_user = make_account(server, "Alice Liddell")
    bob_user = make_account(server, "Bob Builder")
    befriend(server, alice_user, bob_user)
    alice = open_client(server)
    page = alice.page

    # Signing in by keyboard: the account field has focus, Tab moves on, Enter submits.
    expect(page.get_by_test_id("login-account")).to_be_focused()
    page.keyboard.type(alice_user.account)
    page.keyboard.press("Tab")
    expect(page.get_by_test_id("login-password")).to_be_focused()
    page.keyboard.type(alice_user.password)
    page.keyboard.press("Enter")
    alice.expect_online()

    # Every form control has an accessible name; live regions are in place.
    unnamed = page.evaluate(
        """() => [...document.querySelectorAll('input, textarea, select, button')]
            .filter(el => !el.closest('[hidden]'))
            .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label')
                          && !el.textContent.trim())
            .map(el => el.outerHTML.slice(0, 80))"""
    )
    assert unnamed == []
    expect(alice.banner).to_have_attribute("role", "status")
    expect(alice.banner).to_have_attribute("aria-live", "polite")
    expect(page.get_by_test_id("announcer")).to_have_attribute("aria-live", "polite")

    # Tabs follow the ARIA pattern: arrow keys switch them.
    page.get_by_test_id("tab-chats").focus()
    page.keyboard.press("ArrowRight")
    expect(page.get_by_test_id("tab-contacts")).to_be_focused()
    expect(page.get_by_test_id("tab-contacts")).to_have_attribute("aria-selected", "true")
    page.keyboard.press("ArrowLeft")
    expect(page.get_by_role("tab", name="Chats")).to_have_attribute("aria-selected", "true")

    # A conversation opens with Enter and the composer takes the focus.
    alice.conv("Bob Builder").focus()
    page.keyboard.press("Enter")
    expect(alice.composer).to_be_focused()
    expect(alice.conv("Bob Builder")).to_have_attribute("aria-current", "true")
    page.keyboard.type("Typed without a mouse")
    page.keyboard.press("Enter")
    expect(alice.message("Typed without a mouse").get_by_test_id("msg-status")).to_have_attribute(
        "data-status", "sent"
    )

    # A message arriving in the open conversation is announced politely.
    bob = open_client(server).login(bob_user)
    bob.open_conv("Alice Liddell")
    bob.send("Announced to screen readers")
    expect(page.get_by_test_id("announcer")).to_have_text(
        "Bob Builder: Announced to screen readers"
    )

    # Dialogs trap focus and close with Escape, returning to the page.
    page.get_by_test_id("new-group").click()
    dialog = page.get_by_test_id("group-create-dialog")
    expect(dialog.get_by_label("Group name")).to_be_focused()
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()


def test_sign_in_errors_session_reload_and_logout_revoking_the_token(server, open_client):
    alice_user = make_account(server, "Alice Liddell")
    alice = open_client(server)
    page = alice.page
    form = page.get_by_test_id("login-form")

    form.get_by_label("Account").fill(alice_user.account)
    form.get_by_label("Password").fill("not the password")
    form.get_by_test_id("login-submit").click()
    expect(page.get_by_test_id("login-error")).to_have_text("Wrong account or password.")
    expect(page.get_by_test_id("app")).to_be_hidden()

    # Registering a taken account is refused with a clear message.
    page.get_by_test_id("show-register").click()
    register = page.get_by_test_id("register-form")
    register.get_by_label("Display name").fill("Impostor")
    register.get_by_label("Account", exact=True).fill(alice_user.account)
    register.get_by_label("Password").fill("whatever-pw")
    register.get_by_test_id("register-submit").click()
    expect(page.get_by_test_id("register-error")).to_contain_text("is taken")

    page.get_by_test_id("show-login").click()
    alice.login(alice_user)
    token = page.evaluate("localStorage.getItem('rim.token')")
    assert token

    # The session survives a reload.
    page.reload()
    alice.expect_online()
    expect(page.get_by_test_id("me-name")).to_have_text("Alice Liddell")

    page.get_by_test_id("logout").click()
    expect(page.get_by_test_id("auth-screen")).to_be_visible()
    expect(page.get_by_test_id("app")).to_be_hidden()
    assert page.evaluate("localStorage.getItem('rim.token')") is None
    response = page.request.get(
        f"{server.http_url}/api/user/get?uid={alice_user.uid}",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status == 401
    assert response.json()["msg"] == "login required"
    page.reload()
    expect(page.get_by_test_id("auth-screen")).to_be_visible()
