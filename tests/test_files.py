"""POST /api/file/upload (PROTOCOL.md §6.3): what is accepted, what is refused and why,
on both stores (a directory, and a real S3 API on loopback). A refusal leaves no row
and no stored object behind."""

import io
import json
import os

import pytest
from PIL import Image

from files.images import THUMBNAIL_SIZE
from files.models import File
from tests.files_helpers import (
    UPLOAD,
    CountingStream,
    bomb_png,
    docx_bytes,
    gps_exif,
    image_bytes,
    multipart,
    post_upload,
    stored_bytes,
    upload,
    uploaded,
    zip_bytes,
)
from tests.rest_helpers import run_in_threads

PNG = image_bytes("PNG")
JPEG = image_bytes("JPEG")
TRUNCATED_PNG = image_bytes("PNG", size=(400, 300), mode="RGB", compress_level=0)[:5000]
TRUNCATED_JPEG = image_bytes("JPEG", size=(400, 300))[:600]
HTML = b"<!DOCTYPE html><html><body><script>alert(document.cookie)</script></body></html>"
SVG = (
    b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)">'
    b"<rect width='10' height='10'/></svg>"
)


pytestmark = pytest.mark.usefixtures("upload_sandbox")


def refused(client, data: bytes, name: str, content_type: str, *, expect: int) -> str:
    status, envelope = upload(client, data, name, content_type)
    assert status == expect, envelope
    assert envelope["data"] is None
    return envelope["msg"]


def nothing_kept(store) -> None:
    assert File.objects.count() == 0
    assert store.names() == set()


# Accepted uploads


def test_an_image_upload_returns_the_file_and_stores_it_with_a_thumbnail(
    alice_client, alice, file_storage
):
    data = uploaded(alice_client, image_bytes("PNG", size=(640, 480)), "cat.png", "image/png")
    file = File.objects.get()
    assert data == {
        "id": file.pk,
        "url": f"/api/file/{file.key}",
        "name": "cat.png",
        "size": file.size,
        "mime": "image/png",
        "width": 640,
        "height": 480,
        "thumbUrl": f"/api/file/{file.key}/thumb",
    }
    assert file.owner == alice and file.sent_at is None
    assert len(file.key) >= 22  # token_urlsafe(16): 128 random bits
    assert file_storage.names() == {file.stored_name, file.thumb_name}
    assert len(stored_bytes(file.stored_name)) == file.size


def test_file_urls_are_absolute_on_the_public_url_when_it_is_set(alice_client, settings):
    settings.RIM_PUBLIC_URL = "https://chat.example.com"
    data = uploaded(alice_client, PNG, "a.png")
    assert data["url"].startswith("https://chat.example.com/api/file/")
    assert data["thumbUrl"] == data["url"] + "/thumb"


def test_keys_are_unique_and_unguessable(alice_client):
    urls = {uploaded(alice_client, PNG, "a.png")["url"] for _ in range(5)}
    assert len(urls) == 5


@pytest.mark.parametrize("file_storage", ["filesystem"], indirect=True)
@pytest.mark.parametrize(
    ("content", "name", "client_type", "mime", "kept_name"),
    [
        (JPEG, "photo.png", "image/png", "image/jpeg", "photo.jpg"),
        (JPEG, "photo.JPEG", "image/jpeg", "image/jpeg", "photo.jpeg"),
        (image_bytes("GIF"), "anim.gif", "image/gif", "image/gif", "anim.gif"),
        (image_bytes("WEBP"), "pic", "application/octet-stream", "image/webp", "pic.webp"),
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n%%EOF\n", "doc.png", "image/png",
         "application/pdf", "doc.pdf"),
        (zip_bytes({"a.txt": b"hello"}), "stuff.zip", "application/zip", "application/zip",
         "stuff.zip"),
        (docx_bytes(), "report.zip", "application/zip",
         "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
         "report.docx"),
        (zip_bytes({"mimetype": b"application/vnd.oasis.opendocument.text"}), "essay.odt",
         "application/vnd.oasis.opendocument.text", "application/vnd.oasis.opendocument.text",
         "essay.odt"),
        ("naïve notes\n\ta < b, 3 <= 4\n".encode(), "notes.md", "text/markdown", "text/plain",
         "notes.md"),
        (b"just words", "page.html", "text/html", "text/plain", "page.txt"),
        (b"a,b\n1,2\n", "data.csv", "text/csv", "text/plain", "data.csv"),
        (b"echo hi", "run.bat", "text/plain", "text/plain", "run.txt"),
    ],
)  # fmt: skip
def test_the_type_is_decided_by_the_content_never_by_the_name_or_the_client(
    alice_client, file_storage, content, name, client_type, mime, kept_name
):
    data = uploaded(alice_client, content, name, client_type)
    assert (data["mime"], data["name"]) == (mime, kept_name)
    if not mime.startswith("image/"):
        assert data["width"] is data["height"] is data["thumbUrl"] is None
        assert data["size"] == len(content)
        assert stored_bytes(File.objects.get().stored_name) == content


@pytest.mark.parametrize(
    ("uploaded_name", "kept"),
    [
        ("../../etc/passwd.png", "passwd.png"),
        ("..\\..\\windows\\evil.png", "evil.png"),
        ("/absolute/path/x.png", "x.png"),
        ("photo\u202egnp.exe.png", "photognp.exe.png"),  # right-to-left override removed
        ("  .hidden.png", "hidden.png"),
        ("tab\tand\nnew line.png", "tabandnew line.png"),  # Django drops \t and \n first
        ("x" * 300 + ".png", "x" * 100 + ".png"),
        ("..png", "file.png"),
    ],
)
def test_names_are_sanitised_and_never_reach_the_store(
    alice_client, file_storage, tmp_path, uploaded_name, kept
):
    data = uploaded(alice_client, PNG, uploaded_name, "image/png")
    assert data["name"] == kept
    file = File.objects.get()
    assert file_storage.names() == {file.stored_name, file.thumb_name}
    for stored in file_storage.names():
        assert stored.startswith("files/") and ".." not in stored and file.key in stored
    assert not (tmp_path / "etc").exists()


def test_a_path_in_the_name_is_not_taken_from_the_client_even_unencoded(alice_client, file_storage):
    # The test client's own encoder would strip the path before it is sent: built by hand.
    body, content_type = multipart([("file", "../../etc/passwd.png", PNG, "image/png")])
    assert b'filename="../../etc/passwd.png"' in body
    status, envelope = post_upload(alice_client, body, content_type)
    assert status == 200 and envelope["data"]["name"] == "passwd.png"


# Refused uploads: each leaves nothing behind, on either store


def test_a_non_image_named_png_is_refused(alice_client, file_storage):
    msg = refused(alice_client, os.urandom(2048), "cat.png", "image/png", expect=415)
    assert "not allowed" in msg and "PNG" in msg
    nothing_kept(file_storage)


def test_bytes_with_png_magic_that_do_not_decode_are_refused(alice_client, file_storage):
    msg = refused(alice_client, PNG[:16] + os.urandom(500), "x.png", "image/png", expect=415)
    assert "not a valid PNG image" in msg
    nothing_kept(file_storage)


@pytest.mark.parametrize(("data", "fmt"), [(TRUNCATED_PNG, "PNG"), (TRUNCATED_JPEG, "JPEG")])
def test_a_truncated_image_is_refused(alice_client, file_storage, data, fmt):
    msg = refused(alice_client, data, "cut.img", "image/png", expect=415)
    assert msg == f"not a valid {fmt} image: it is truncated or damaged"
    nothing_kept(file_storage)


def test_a_decompression_bomb_is_refused_before_it_is_decoded(alice_client, file_storage, settings):
    settings.RIM_IMAGE_MAX_PIXELS = 50_000_000
    bomb = bomb_png()  # 400 megapixels
    assert len(bomb) < settings.RIM_UPLOAD_MAX
    msg = refused(alice_client, bomb, "bomb.png", "image/png", expect=413)
    assert "more than 50000000 pixels" in msg
    nothing_kept(file_storage)


def test_pillows_own_bomb_error_is_refused_too(alice_client, file_storage, settings):
    # Above twice Pillow's MAX_IMAGE_PIXELS, Image.open itself raises: same answer.
    settings.RIM_IMAGE_MAX_PIXELS = 10**12
    msg = refused(alice_client, bomb_png(14_000, 14_000), "bomb.png", "image/png", expect=413)
    assert "pixels" in msg
    nothing_kept(file_storage)


def test_an_animation_counts_the_pixels_of_every_frame(alice_client, file_storage, settings):
    frames = [Image.new("RGB", (100, 100), color) for color in ("red", "green", "blue")]
    out = io.BytesIO()
    frames[0].save(out, "GIF", save_all=True, append_images=frames[1:])
    settings.RIM_IMAGE_MAX_PIXELS = 25_000  # one frame fits, three do not
    msg = refused(alice_client, out.getvalue(), "a.gif", "image/gif", expect=413)
    assert "pixels" in msg
    nothing_kept(file_storage)


def test_an_empty_file_is_refused(alice_client, file_storage):
    assert refused(alice_client, b"", "empty.txt", "text/plain", expect=400) == (
        "file: the file is empty"
    )
    nothing_kept(file_storage)


def test_a_file_over_the_size_limit_is_refused(alice_client, file_storage, settings):
    settings.RIM_UPLOAD_MAX = 1000
    msg = refused(alice_client, b"a" * 1001, "big.txt", "text/plain", expect=413)
    assert msg == "file over the upload limit of 1000 bytes"
    nothing_kept(file_storage)
    assert uploaded(alice_client, b"a" * 1000, "fits.txt")["size"] == 1000


def test_an_upload_over_the_quota_is_refused_and_the_earlier_ones_stay(
    alice_client, client_for, bob, file_storage, settings
):
    settings.RIM_UPLOAD_QUOTA = 3000
    first = uploaded(alice_client, b"a" * 2000, "one.txt")
    msg = refused(alice_client, b"b" * 1001, "two.txt", "text/plain", expect=409)
    assert msg == "upload quota exceeded: 2000 of 3000 bytes used, this file needs 1001"
    assert list(File.objects.values_list("pk", flat=True)) == [first["id"]]
    assert len(file_storage.names()) == 1
    # Another user's quota is their own.
    assert uploaded(client_for(bob), b"c" * 2500, "bob.txt")["size"] == 2500


def test_a_user_with_a_full_quota_is_refused_before_the_body_is_read(
    alice_client, file_storage, settings
):
    settings.RIM_UPLOAD_QUOTA = 100
    uploaded(alice_client, b"a" * 100, "full.txt")
    body, content_type = multipart([("file", "more.txt", b"b", "text/plain")])
    stream = CountingStream(body)
    status, envelope = post_upload(
        alice_client, b"", content_type, **{"wsgi.input": stream, "CONTENT_LENGTH": str(len(body))}
    )
    assert status == 409 and "quota" in envelope["msg"]
    assert stream.read_bytes == 0


@pytest.mark.parametrize(
    ("data", "name", "client_type"),
    [
        (HTML, "page.html", "text/html"),
        (HTML, "cat.png", "image/png"),
        (b"  \n\t<html><body>hi</body></html>", "x.txt", "text/plain"),
        (SVG, "logo.svg", "image/svg+xml"),
        (SVG, "logo.png", "image/png"),
        (b"\xef\xbb\xbf<svg onload=alert(1)>", "bom.jpg", "image/jpeg"),
        (b"Dear all,\n\nsee below.\n\n<script>alert(1)</script>\n", "letter.txt", "text/plain"),
        (b"<?xml version='1.0'?><a/>", "data.xml", "text/xml"),
        (b"<!-- a comment -->", "c.txt", "text/plain"),
    ],
)
def test_html_svg_and_any_markup_are_refused_whatever_they_are_called(
    alice_client, file_storage, data, name, client_type
):
    msg = refused(alice_client, data, name, client_type, expect=415)
    assert msg == "HTML, SVG, XML and other markup are not allowed"
    nothing_kept(file_storage)


@pytest.mark.parametrize(
    "data",
    [
        b"text with a NUL \x00 byte",
        b"\x1b[31mterminal escapes\x1b[0m",
        "a C1 control \u0085 here".encode(),
        b"latin-1 caf\xe9",
        b"PK\x03\x04 not really a zip",
    ],
)
def test_binary_or_invalid_text_is_refused(alice_client, file_storage, data):
    status, envelope = upload(alice_client, data, "x.txt", "text/plain")
    assert status == 415, envelope
    nothing_kept(file_storage)


def test_a_request_without_a_file_part_is_refused(alice_client, file_storage):
    body, content_type = multipart([("attachment", "a.txt", b"hello", "text/plain")])
    status, envelope = post_upload(alice_client, body, content_type)
    assert status == 400
    assert envelope["msg"] == "file: send the file as the multipart/form-data field 'file'"
    body, content_type = multipart([], fields={"file": "not a file"})
    assert post_upload(alice_client, body, content_type)[0] == 400
    nothing_kept(file_storage)


def test_only_the_first_file_part_is_kept(alice_client, file_storage):
    body, content_type = multipart(
        [("file", "one.txt", b"first", "text/plain"), ("file", "two.txt", b"second", "text/plain")]
    )
    status, envelope = post_upload(alice_client, body, content_type)
    assert status == 200 and envelope["data"]["name"] == "one.txt"
    assert len(file_storage.names()) == 1


def test_a_malformed_multipart_body_is_a_400(alice_client):
    status, envelope = post_upload(alice_client, b"garbage", "multipart/form-data")
    assert status == 400 and envelope["msg"].startswith("malformed multipart body")


def test_a_json_body_is_an_unsupported_media_type(alice_client):
    response = alice_client.post(UPLOAD, {"file": "x"}, format="json")
    assert response.status_code == 415
    assert json.loads(response.content)["ok"] is False


def test_uploading_needs_a_token(api_client, db, file_storage):
    status, envelope = upload(api_client, PNG, "a.png", "image/png")
    assert status == 401 and envelope["msg"] == "login required"
    nothing_kept(file_storage)


def test_uploads_are_throttled_per_user(alice_client, client_for, bob, settings):
    settings.RIM_UPLOAD_RATE = "2/min"
    uploaded(alice_client, b"one", "1.txt")
    uploaded(alice_client, b"two", "2.txt")
    body, content_type = multipart([("file", "3.txt", b"three", "text/plain")])
    response = alice_client.post(UPLOAD, data=body, content_type=content_type)
    assert response.status_code == 429
    envelope = json.loads(response.content)
    assert envelope["code"] == 429 and envelope["msg"].startswith("too many requests: try again")
    assert 0 < int(response["Retry-After"]) <= 60
    assert File.objects.count() == 2
    assert uploaded(client_for(bob), b"bob", "b.txt")["size"] == 3


# Images: metadata, orientation, thumbnails


@pytest.mark.parametrize(
    ("fmt", "extra"),
    [
        ("JPEG", {"comment": b"secret comment", "xmp": b"<x:xmpmeta>secret xmp</x:xmpmeta>"}),
        ("PNG", {}),
        ("WEBP", {"xmp": b"<x:xmpmeta>secret xmp</x:xmpmeta>"}),
    ],
)
def test_exif_gps_and_other_metadata_are_gone_after_re_encoding(
    alice_client, file_storage, fmt, extra
):
    original = image_bytes(fmt, size=(200, 100), exif=gps_exif(), **extra)
    assert b"SpyCam" in original  # the upload does carry them
    data = uploaded(alice_client, original, "photo", "image/jpeg")
    file = File.objects.get()
    for name in (file.stored_name, file.thumb_name):
        stored = stored_bytes(name)
        for secret in (b"SpyCam", b"Model-X-1000", b"secret", b"Exif"):
            assert secret not in stored, (name, secret)
        image = Image.open(io.BytesIO(stored))
        assert dict(image.getexif()) == {}
        assert not {"exif", "xmp", "comment"} & set(image.info)
    assert (data["width"], data["height"]) == (200, 100)


def test_png_text_chunks_are_gone(alice_client):
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text("Author", "secret author")
    info.add_itxt("Location", "secret place")
    uploaded(alice_client, image_bytes("PNG", pnginfo=info), "p.png")
    assert b"secret" not in stored_bytes(File.objects.get().stored_name)


def test_the_exif_orientation_is_applied_before_it_is_dropped(alice_client):
    # Orientation 6: the camera was turned; the picture is shown rotated 90° clockwise.
    original = Image.new("RGB", (60, 20), "white")
    original.paste((255, 0, 0), (0, 0, 10, 20))  # a red band on the left edge
    out = io.BytesIO()
    original.save(out, "JPEG", exif=gps_exif(orientation=6), quality=95)
    data = uploaded(alice_client, out.getvalue(), "turned.jpg")
    assert (data["width"], data["height"]) == (20, 60)
    stored = Image.open(io.BytesIO(stored_bytes(File.objects.get().stored_name)))
    assert stored.size == (20, 60)
    red, green, _ = stored.convert("RGB").getpixel((10, 3))  # the band is now on top
    assert red > 200 and green < 80


@pytest.mark.parametrize(
    ("size", "thumbnail"),
    [((1000, 500), (320, 160)), ((300, 900), (107, 320)), ((100, 50), (100, 50))],
)
def test_the_thumbnail_is_at_most_320_pixels_on_its_longest_side(
    alice_client, file_storage, size, thumbnail
):
    uploaded(alice_client, image_bytes("JPEG", size=size), "t.jpg")
    file = File.objects.get()
    thumb = Image.open(io.BytesIO(stored_bytes(file.thumb_name)))
    assert thumb.size == thumbnail and max(thumb.size) <= THUMBNAIL_SIZE
    assert thumb.format == "JPEG"


def test_a_transparent_image_gets_a_png_thumbnail_with_alpha(alice_client):
    uploaded(alice_client, image_bytes("PNG", size=(800, 800), mode="RGBA"), "t.png")
    thumb = Image.open(io.BytesIO(stored_bytes(File.objects.get().thumb_name)))
    assert (thumb.format, thumb.mode, thumb.size) == ("PNG", "RGBA", (320, 320))


def test_an_animated_gif_keeps_its_frames_and_timing(alice_client):
    frames = [Image.new("RGB", (50, 40), color) for color in ("red", "green", "blue")]
    out = io.BytesIO()
    frames[0].save(out, "GIF", save_all=True, append_images=frames[1:], duration=70, loop=0)
    data = uploaded(alice_client, out.getvalue(), "a.gif")
    stored = Image.open(io.BytesIO(stored_bytes(File.objects.get().stored_name)))
    assert (stored.n_frames, stored.info["duration"], stored.info["loop"]) == (3, 70, 0)
    assert (data["width"], data["height"]) == (50, 40)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("file_storage", ["filesystem"], indirect=True)
def test_uploads_at_once_cannot_both_take_the_last_of_the_quota(
    client_for, alice, file_storage, settings
):
    settings.RIM_UPLOAD_QUOTA = 1000
    clients = [client_for(alice) for _ in range(4)]
    statuses = run_in_threads(
        4, lambda index: upload(clients[index], b"x" * 600, f"{index}.txt", "text/plain")[0]
    )
    assert sorted(statuses) == [200, 409, 409, 409]
    assert File.objects.count() == 1 and len(file_storage.names()) == 1
