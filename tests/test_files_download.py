"""Downloads at a file's capability URL: streamed from a directory with headers that
keep any content inert, or a redirect to a short-lived signed URL of the S3 object
that the store serves the same way (fetched here from the real S3 API on loopback)."""

import asyncio
import io
import json
import urllib.parse
import urllib.request

import pytest
from django.core.files.storage import storages
from PIL import Image

from files.models import File
from files.views import StreamedFile
from tests.files_helpers import S3, image_bytes, uploaded

CSP = "default-src 'none'; sandbox"
PDF = b"%PDF-1.4\n1 0 obj\n<<>>\nendobj\n%%EOF\n"

pytestmark = pytest.mark.usefixtures("upload_sandbox")


def streamed_body(response) -> bytes:
    return b"".join(response.streaming_content)


def assert_inert(response) -> None:
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Security-Policy"] == CSP
    assert response["Referrer-Policy"] == "no-referrer"


def test_an_image_is_streamed_inline_with_its_type_and_inert_headers(alice_client, api_client):
    data = uploaded(alice_client, image_bytes("PNG", size=(30, 20)), "cat.png", "text/html")
    response = api_client.get(data["url"])  # no token: the URL is the access
    assert response.status_code == 200
    assert isinstance(response, StreamedFile)
    assert response["Content-Type"] == "image/png"
    assert response["Content-Disposition"] == (
        "inline; filename=\"cat.png\"; filename*=UTF-8''cat.png"
    )
    assert response["Cache-Control"] == "private, max-age=3600"
    assert_inert(response)
    body = streamed_body(response)
    assert int(response["Content-Length"]) == len(body) == data["size"]
    assert Image.open(io.BytesIO(body)).size == (30, 20)


@pytest.mark.parametrize(
    ("content", "name", "content_type"),
    [
        (PDF, "report.pdf", "application/pdf"),
        (b"hello\n", "notes.txt", "text/plain; charset=utf-8"),
    ],
)
def test_anything_but_an_image_is_an_attachment(
    alice_client, api_client, content, name, content_type
):
    data = uploaded(alice_client, content, name, "text/html")
    response = api_client.get(data["url"])
    assert response.status_code == 200
    assert response["Content-Type"] == content_type
    assert response["Content-Disposition"].startswith(f'attachment; filename="{name}"')
    assert_inert(response)
    assert streamed_body(response) == content


def test_a_non_ascii_name_has_an_exact_filename_star_and_an_ascii_fallback(
    alice_client, api_client
):
    data = uploaded(alice_client, b"bonjour", 'résumé "final".txt')
    response = api_client.get(data["url"])
    assert response["Content-Disposition"] == (
        'attachment; filename="r_sum_ _final_.txt"; '
        "filename*=UTF-8''r%C3%A9sum%C3%A9%20%22final%22.txt"
    )


def test_the_thumbnail_is_served_inline(alice_client, api_client):
    data = uploaded(alice_client, image_bytes("JPEG", size=(1000, 800)), "big.jpg")
    response = api_client.get(data["thumbUrl"])
    assert response.status_code == 200
    assert response["Content-Type"] == "image/jpeg"
    assert response["Content-Disposition"].startswith('inline; filename="big-thumbnail.jpg"')
    assert_inert(response)
    assert Image.open(io.BytesIO(streamed_body(response))).size == (320, 256)


@pytest.mark.parametrize(
    ("content", "name"), [(image_bytes("JPEG", size=(1000, 800)), "big.jpg"), (PDF, "a.pdf")]
)
def test_info_answers_the_file_to_whoever_has_its_url(alice_client, api_client, content, name):
    data = uploaded(alice_client, content, name)
    response = api_client.get(data["url"] + "/info")  # no token: the URL is the access
    assert response.status_code == 200
    assert response["Cache-Control"] == "private, max-age=3600"
    assert json.loads(response.content) == {"ok": True, "code": 200, "msg": None, "data": data}


@pytest.mark.parametrize(
    "path",
    [
        "/api/file/AAAAAAAAAAAAAAAAAAAAAA",
        "/api/file/AAAAAAAAAAAAAAAAAAAAAA/thumb",
        "/api/file/AAAAAAAAAAAAAAAAAAAAAA/info",
    ],
)
def test_an_unknown_key_is_a_404_in_the_envelope(api_client, db, path):
    response = api_client.get(path)
    assert response.status_code == 404
    assert json.loads(response.content) == {
        "ok": False,
        "code": 404,
        "msg": "file not found",
        "data": None,
    }


def test_a_file_that_is_not_an_image_has_no_thumbnail(alice_client, api_client):
    data = uploaded(alice_client, PDF, "a.pdf")
    assert data["thumbUrl"] is None
    response = api_client.get(data["url"] + "/thumb")
    assert response.status_code == 404 and json.loads(response.content)["msg"] == "file not found"


def test_a_stored_object_gone_missing_is_a_404(alice_client, api_client):
    data = uploaded(alice_client, b"soon gone", "a.txt")
    storages["default"].delete(File.objects.get().stored_name)
    response = api_client.get(data["url"])
    assert response.status_code == 404 and json.loads(response.content)["msg"] == "file not found"


def test_the_streamed_response_reads_the_file_a_chunk_at_a_time_under_asgi(alice_client):
    uploaded(alice_client, b"x" * (3 * StreamedFile.block_size + 5), "big.txt")
    stored = storages["default"].open(File.objects.get().stored_name, "rb")
    response = StreamedFile(stored)

    async def first_chunk_then_rest():
        chunks = aiter(response)
        first = await anext(chunks)
        position = stored.tell()  # what had been read when the first chunk went out
        rest = [chunk async for chunk in chunks]
        return first, position, rest

    first, position, rest = asyncio.run(first_chunk_then_rest())
    response.close()
    assert len(first) == position == StreamedFile.block_size
    assert [len(chunk) for chunk in rest] == [StreamedFile.block_size] * 2 + [5]
    assert stored.closed


# S3: a redirect to a signed URL of the object


@pytest.mark.parametrize("file_storage", [S3], indirect=True)
@pytest.mark.parametrize(
    ("content", "name", "content_type", "disposition"),
    [
        (image_bytes("PNG", size=(40, 30)), "pic.png", "image/png", "inline"),
        (PDF, "doc.pdf", "application/pdf", "attachment"),
        (b"some text", "t.txt", "text/plain; charset=utf-8", "attachment"),
    ],
)
def test_s3_downloads_redirect_to_a_working_short_lived_signed_url(
    alice_client, api_client, file_storage, settings, content, name, content_type, disposition
):
    settings.RIM_S3_URL_EXPIRE = 120
    data = uploaded(alice_client, content, name, "text/html")
    response = api_client.get(data["url"])
    assert response.status_code == 302
    assert response["Cache-Control"] == "private, max-age=60"
    assert_inert(response)
    location = urllib.parse.urlsplit(response["Location"])
    assert f"{location.scheme}://{location.netloc}" == file_storage.moto.url
    query = urllib.parse.parse_qs(location.query)
    assert query["X-Amz-Expires"] == ["120"]
    assert query["response-content-type"] == [content_type]
    assert query["response-content-disposition"][0].startswith(f'{disposition}; filename="{name}"')
    with urllib.request.urlopen(response["Location"], timeout=20) as fetched:
        body = fetched.read()
        assert fetched.headers["Content-Type"] == content_type
        assert fetched.headers["Content-Disposition"].startswith(disposition)
    assert body == file_storage.read(File.objects.get().stored_name)
    assert len(body) == data["size"]


@pytest.mark.parametrize("file_storage", [S3], indirect=True)
def test_s3_thumbnails_redirect_too(alice_client, api_client, file_storage):
    data = uploaded(alice_client, image_bytes("PNG", size=(900, 300), mode="RGBA"), "wide.png")
    response = api_client.get(data["thumbUrl"])
    assert response.status_code == 302
    with urllib.request.urlopen(response["Location"], timeout=20) as fetched:
        assert fetched.headers["Content-Type"] == "image/png"
        assert Image.open(io.BytesIO(fetched.read())).size == (320, 107)
