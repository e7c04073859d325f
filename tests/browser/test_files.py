"""Files in the web client, between two users: attaching with the button, by drag and
drop and by pasting, the upload's progress and its cancel, pictures as thumbnails that
open full size, other files as cards whose link downloads them, and refusals shown with
the server's reason, with nothing sent."""

import base64
import io
import re

import pytest
from PIL import Image
from playwright.sync_api import expect

from tests.browser.conftest import serving
from tests.browser.ui import Client, befriended_pair, in_chat

pytestmark = pytest.mark.browser

UPLOAD_MAX = 1_000_000
MAX_PIXELS = 4_000_000
PDF = b"%PDF-1.4\n1 0 obj\n<<>>\nendobj\n%%EOF\n" + b"% padding\n" * 120
URL_RE = re.compile(r"^/api/file/[A-Za-z0-9_-]{22}$")


@pytest.fixture(scope="module")
def files_server(tmp_path_factory):
    """Uploads stored in the test's own directory, with a 1 MB upload limit and a
    4-megapixel limit on images."""
    workdir = tmp_path_factory.mktemp("files-server")
    env = {
        "RIM_MEDIA_ROOT": str(workdir / "media"),
        "RIM_UPLOAD_MAX": str(UPLOAD_MAX),
        "RIM_IMAGE_MAX_PIXELS": str(MAX_PIXELS),
    }
    yield from serving(workdir, env)


@pytest.fixture
def chatting(files_server, open_client):
    """Alice and Bob, friends, each with their chat open: (alice, bob)."""
    alice_user, bob_user, _ = befriended_pair(files_server)
    return in_chat(open_client, files_server, alice_user, bob_user)


def png(size: tuple[int, int], colour: str = "teal") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, "PNG")
    return out.getvalue()


def pick_files(client: Client, *files: dict) -> None:
    """Choose files with the composer's attach button, through the browser's file chooser."""
    with client.page.expect_file_chooser() as chooser:
        client.page.get_by_test_id("attach-button").click()
    chooser.value.set_files(list(files))


def as_file(name: str, mime: str, data: bytes) -> dict:
    return {"name": name, "mimeType": mime, "buffer": data}


def data_transfer(client: Client, name: str, mime: str, data: bytes):
    """A DataTransfer holding one file, in the page (what a drag or a paste carries)."""
    return client.page.evaluate_handle(
        """([b64, name, type]) => {
            const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
            const transfer = new DataTransfer();
            transfer.items.add(new File([bytes], name, { type }));
            return transfer;
        }""",
        [base64.b64encode(data).decode(), name, mime],
    )


def sent_files(client: Client) -> list[dict]:
    return [m for m in client.events_sent("Msg") if m["kind"] in ("Image", "File")]


def test_a_picture_from_the_attach_button_reaches_the_peer_live_and_opens_full_size(chatting):
    alice, bob = chatting
    pick_files(alice, as_file("holiday.png", "image/png", png((800, 600))))

    mine = alice.messages.filter(has=alice.page.get_by_test_id("msg-thumb")).last
    expect(mine.get_by_test_id("msg-status")).to_have_attribute(
        "data-status", re.compile("sent|read")
    )
    (sent,) = sent_files(alice)
    assert sent["kind"] == "Image" and URL_RE.match(sent["content"]), sent
    expect(alice.page.get_by_test_id("uploads")).to_be_hidden()
    expect(mine.get_by_test_id("msg-thumb")).to_have_attribute("width", "320")

    # Bob's thumbnail comes live, drawn at its size (the File's, scaled to 320 px).
    thumb = bob.page.get_by_test_id("msg-thumb")
    expect(thumb).to_have_attribute("src", sent["content"] + "/thumb")
    expect(thumb).to_have_attribute("width", "320")
    expect(thumb).to_have_attribute("height", "240")
    expect(thumb).to_have_attribute("alt", "holiday.png")
    expect(thumb).to_have_js_property("complete", True)
    assert thumb.evaluate("img => [img.naturalWidth, img.naturalHeight]") == [320, 240]
    expect(bob.conv("Alice Liddell").get_by_test_id("conv-preview")).to_have_text("Photo")

    # A click opens it full size; Escape closes it and the focus is back on the thumbnail.
    lightbox = bob.page.get_by_test_id("lightbox")
    link = bob.page.get_by_test_id("thumb-link")
    link.click()
    expect(lightbox).to_be_visible()
    full = lightbox.get_by_test_id("lightbox-image")
    expect(full).to_have_attribute("src", sent["content"])
    expect(full).to_have_js_property("complete", True)
    assert full.evaluate("img => img.naturalWidth") == 800
    expect(lightbox.get_by_test_id("lightbox-name")).to_have_text("holiday.png")
    expect(lightbox.get_by_test_id("lightbox-close")).to_be_focused()
    bob.screenshot("files-lightbox")
    bob.page.keyboard.press("Escape")
    expect(lightbox).to_be_hidden()
    expect(link).to_be_focused()

    # From the keyboard too; a click anywhere on it closes it.
    bob.page.keyboard.press("Enter")
    expect(lightbox).to_be_visible()
    full.click()
    expect(lightbox).to_be_hidden()

    # After a reload the picture comes with history, sized before it is drawn.
    bob.page.reload()
    bob.expect_online()
    bob.open_conv("Alice Liddell")
    thumb = bob.page.get_by_test_id("msg-thumb")
    expect(thumb).to_have_attribute("width", "320")
    box = thumb.bounding_box()
    assert (round(box["width"]), round(box["height"])) == (320, 240)


def test_a_file_dropped_on_the_conversation_is_a_card_whose_link_downloads_it(chatting):
    alice, bob = chatting
    question = bob.msg_id(bob.send("Can you send me the report?"))
    alice.open_menu(alice.by_id(question)).get_by_test_id("msg-action-reply").click()
    name = "report <img src=x onerror=window.__xss=1>.pdf"
    transfer = data_transfer(alice, name, "application/pdf", PDF)
    messages = alice.page.get_by_test_id("messages")
    messages.dispatch_event("dragover", {"dataTransfer": transfer})
    expect(alice.page.get_by_test_id("chat")).to_have_class(re.compile(r"\bdropping\b"))
    messages.dispatch_event("drop", {"dataTransfer": transfer})
    expect(alice.page.get_by_test_id("chat")).not_to_have_class(re.compile(r"\bdropping\b"))

    card = bob.page.get_by_test_id("file-card")
    expect(card.get_by_test_id("file-name")).to_have_text(name)
    expect(card.get_by_test_id("file-meta")).to_have_text("1.2 kB · PDF document")
    (sent,) = sent_files(alice)
    assert sent["kind"] == "File" and URL_RE.match(sent["content"]), sent
    # It answers the message being replied to when it was dropped.
    assert sent["replyTo"] == question
    expect(alice.page.get_by_test_id("reply-bar")).to_be_hidden()
    expect(bob.page.get_by_test_id("msg-quote")).to_contain_text("Can you send me the report?")
    expect(bob.conv("Alice Liddell").get_by_test_id("conv-preview")).to_have_text("File")
    assert bob.page.evaluate("typeof window.__xss") == "undefined"
    expect(bob.page.get_by_test_id("msg-list").locator("[onerror]")).to_have_count(0)
    bob.screenshot("files-card")

    link = card.get_by_test_id("file-download")
    expect(link).to_have_attribute("aria-label", f"Download {name}")
    with bob.page.expect_download() as download:
        link.click()
    with open(download.value.path(), "rb") as fetched:
        assert fetched.read() == PDF


def test_a_picture_pasted_into_the_composer_is_sent_and_text_pastes_as_text(chatting):
    alice, bob = chatting
    prevented = alice.page.evaluate(
        """(transfer) => {
            const paste = new ClipboardEvent('paste', {
                clipboardData: transfer, bubbles: true, cancelable: true,
            });
            document.getElementById('composer-input').dispatchEvent(paste);
            return paste.defaultPrevented;
        }""",
        data_transfer(alice, "image.png", "image/png", png((200, 100), "orange")),
    )
    assert prevented
    thumb = bob.page.get_by_test_id("msg-thumb")
    expect(thumb).to_have_attribute("width", "200")
    expect(thumb).to_have_attribute("height", "100")
    expect(thumb).to_have_js_property("complete", True)
    expect(alice.page.get_by_test_id("msg-thumb")).to_have_count(1)

    # Text on the clipboard is left to the browser, also with the picture of itself that
    # an office program puts there too: it goes into the box.
    prevented = alice.page.evaluate(
        """() => {
            const transfer = new DataTransfer();
            transfer.setData('text/plain', 'just words');
            transfer.items.add(new File(['not really a png'], 'words.png', { type: 'image/png' }));
            const paste = new ClipboardEvent('paste', {
                clipboardData: transfer, bubbles: true, cancelable: true,
            });
            document.getElementById('composer-input').dispatchEvent(paste);
            return paste.defaultPrevented;
        }"""
    )
    assert not prevented
    assert len(sent_files(alice)) == 1


@pytest.mark.parametrize(
    ("name", "mime", "data", "reason"),
    [
        (
            "drawing.svg",
            "image/svg+xml",
            b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
            "Not sent: HTML, SVG, XML and other markup are not allowed",
        ),
        (
            "huge.png",
            "image/png",
            png((2500, 2000)),
            "Not sent: image refused: ",
        ),
    ],
    ids=["svg-415", "pixels-413"],
)
def test_a_file_the_server_refuses_shows_its_reason_and_nothing_is_sent(
    chatting, name, mime, data, reason
):
    alice, bob = chatting
    pick_files(alice, as_file(name, mime, data))
    upload = alice.page.get_by_test_id("upload")
    expect(upload.get_by_test_id("upload-error")).to_contain_text(reason)
    expect(upload.get_by_test_id("upload-error")).to_have_attribute("role", "alert")
    expect(upload.get_by_test_id("upload-name")).to_have_text(name)
    alice.screenshot(f"files-refused-{name}")
    upload.get_by_test_id("upload-cancel").click()
    expect(upload).to_have_count(0)
    expect(alice.page.get_by_test_id("uploads")).to_be_hidden()
    expect(alice.composer).to_be_focused()
    assert sent_files(alice) == []
    expect(alice.messages).to_have_count(0)
    expect(bob.page.get_by_test_id("msg-empty")).to_be_visible()


def test_a_file_over_the_upload_limit_is_refused_before_it_is_sent(chatting):
    alice, _ = chatting
    uploads = []
    alice.page.on("request", lambda r: uploads.append(r) if "/api/file/upload" in r.url else None)
    pick_files(alice, as_file("big.txt", "text/plain", b"a" * 1_500_000))
    error = alice.page.get_by_test_id("upload-error")
    expect(error).to_have_text("Not sent: the file is 1.5 MB, over the upload limit of 1 MB")
    assert uploads == [] and sent_files(alice) == []


def throttle_uploads(client: Client, bytes_per_second: int):
    cdp = client.page.context.new_cdp_session(client.page)
    cdp.send("Network.enable")
    cdp.send(
        "Network.emulateNetworkConditions",
        {
            "offline": False,
            "latency": 0,
            "downloadThroughput": -1,
            "uploadThroughput": bytes_per_second,
        },
    )
    return cdp


def test_an_upload_shows_its_progress_and_can_be_cancelled(chatting):
    alice, bob = chatting
    cdp = throttle_uploads(alice, 100_000)
    text = b"line of notes\n" * 30_000  # 420 kB: about four seconds at 100 kB/s

    pick_files(alice, as_file("notes.txt", "text/plain", text))
    upload = alice.page.get_by_test_id("upload")
    bar = upload.get_by_test_id("upload-progress")
    expect(bar).to_be_visible()
    expect(bar).to_have_attribute("aria-label", "Uploading notes.txt")
    alice.page.wait_for_function(
        "() => { const bar = document.querySelector('[data-testid=upload-progress]');"
        " return bar && bar.value > 0.1 && bar.value < 0.9; }"
    )
    alice.screenshot("files-progress")
    upload.get_by_test_id("upload-cancel").click()
    expect(upload).to_have_count(0)

    # Sent again and left to finish: the bar goes all the way and the card arrives.
    pick_files(alice, as_file("notes.txt", "text/plain", text))
    values = []
    alice.page.expose_function("seeProgress", lambda value: values.append(value))
    alice.page.evaluate(
        """() => {
            const bar = document.querySelector('[data-testid=upload-progress]');
            new MutationObserver(() => window.seeProgress(bar.value))
                .observe(bar, { attributes: true });
            const timer = setInterval(() => bar.isConnected
                ? window.seeProgress(bar.value) : clearInterval(timer), 100);
        }"""
    )
    expect(bob.page.get_by_test_id("file-name")).to_have_text("notes.txt", timeout=30_000)
    cdp.detach()
    assert len([v for v in values if 0 < v < 1]) >= 3, values
    assert values == sorted(values), values
    (sent,) = sent_files(alice)
    assert sent["kind"] == "File"
    expect(bob.messages).to_have_count(1)
