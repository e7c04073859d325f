"""Files end to end: one `manage.py serve` process, spoken to over real sockets.

An upload with a real HTTP client and its download, and the server's own ceiling on
request bodies: daphne would buffer a whole body before the application saw it, so a
body announced too long is refused before it is read, and one streamed without a
length is cut off at the ceiling, with nothing left in memory or on disk.
"""

import io
import json
import os
import socket
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from PIL import Image

from tests.e2e.conftest import env_for_tests, new_user, server_pool
from tests.files_helpers import gps_exif, image_bytes, multipart

pytestmark = pytest.mark.e2e

UPLOAD_MAX = 1024 * 1024
CHUNK = 64 * 1024


class Server:
    def __init__(self, daphne, tmpdir: Path):
        self.daphne = daphne
        self.tmpdir = tmpdir

    @property
    def url(self) -> str:
        return self.daphne.http_url

    @property
    def pid(self) -> int:
        return self.daphne.process.pid

    def rss(self) -> int:
        """Resident memory of the server process, in bytes."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise AssertionError("no VmRSS")

    def open_temporary_files(self) -> list[str]:
        """The server's open files in its TMPDIR, unlinked temporary files included."""
        found = []
        for fd in os.listdir(f"/proc/{self.pid}/fd"):
            try:
                target = os.readlink(f"/proc/{self.pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith(str(self.tmpdir)):
                found.append(target)
        return found


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("files-e2e")
    tmpdir = workdir / "tmp"
    tmpdir.mkdir()
    env = env_for_tests(
        RIM_UPLOAD_MAX=str(UPLOAD_MAX),
        RIM_MEDIA_ROOT=str(workdir / "media"),
        RIM_UPLOAD_RATE="",
        TMPDIR=str(tmpdir),
    )
    with server_pool(workdir) as pool:
        daphne = pool.new("daphne", env)
        daphne.start()
        yield Server(daphne, tmpdir)


def post_file(server: Server, token: str, data: bytes, name: str, content_type: str):
    """(status, envelope) of a multipart upload sent with urllib."""
    body, multipart_type = multipart([("file", name, data, content_type)])
    request = urllib.request.Request(
        f"{server.url}/api/file/upload",
        data=body,
        method="POST",
        headers={"Content-Type": multipart_type, "Authorization": f"Bearer {token}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def get(url: str):
    with urllib.request.urlopen(url, timeout=30) as response:
        return response.status, response.headers, response.read()


def raw_upload(server: Server, token: str, *headers: str) -> socket.socket:
    """A socket on which an upload's request line and headers (and `headers`) went out,
    and nothing of its body yet."""
    lines = [
        "POST /api/file/upload HTTP/1.1",
        f"Host: 127.0.0.1:{server.daphne.port}",
        f"Authorization: Bearer {token}",
        "Content-Type: multipart/form-data; boundary=x",
        *headers,
    ]
    sock = socket.create_connection(("127.0.0.1", server.daphne.port), timeout=10)
    sock.sendall("".join(f"{line}\r\n" for line in lines).encode() + b"\r\n")
    return sock


def read_response(sock: socket.socket) -> bytes:
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def test_an_image_uploaded_with_a_real_client_downloads_clean(server):
    user = new_user(server.url, "uploader")
    photo = image_bytes("JPEG", size=(800, 600), exif=gps_exif())
    status, envelope = post_file(server, user.token, photo, "../holiday.jpg", "image/jpeg")
    assert status == 200, envelope
    file = envelope["data"]
    assert (file["name"], file["mime"], file["width"], file["height"]) == (
        "holiday.jpg",
        "image/jpeg",
        800,
        600,
    )

    status, headers, body = get(server.url + file["url"])
    assert status == 200
    assert headers["Content-Type"] == "image/jpeg"
    assert headers["Content-Disposition"].startswith('inline; filename="holiday.jpg"')
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Content-Security-Policy"] == "default-src 'none'; sandbox"
    assert len(body) == file["size"] and b"SpyCam" not in body
    assert Image.open(io.BytesIO(body)).size == (800, 600)

    status, headers, body = get(server.url + file["thumbUrl"])
    assert status == 200 and Image.open(io.BytesIO(body)).size == (320, 240)


def test_a_large_text_file_streams_back_whole_and_as_an_attachment(server):
    user = new_user(server.url, "writer")
    text = b"".join(b"line %06d of a long log\n" % n for n in range(UPLOAD_MAX // 30))
    status, envelope = post_file(server, user.token, text, "server.log", "text/x-log")
    assert status == 200, envelope
    status, headers, body = get(server.url + envelope["data"]["url"])
    assert headers["Content-Type"] == "text/plain; charset=utf-8"
    assert headers["Content-Disposition"].startswith('attachment; filename="server.log"')
    assert body == text


def test_html_disguised_as_an_image_is_refused_through_the_server(server):
    user = new_user(server.url, "sneaky")
    status, envelope = post_file(
        server, user.token, b"<html><script>alert(1)</script></html>", "cat.png", "image/png"
    )
    assert status == 415
    assert envelope["msg"] == "HTML, SVG, XML and other markup are not allowed"


def test_an_unknown_key_is_a_404_envelope_through_the_server(server):
    with pytest.raises(urllib.error.HTTPError) as missing:
        get(server.url + "/api/file/AAAAAAAAAAAAAAAAAAAAAA")
    assert missing.value.code == 404
    assert json.load(missing.value)["msg"] == "file not found"


@pytest.mark.parametrize("expect_continue", [False, True])
def test_a_body_announced_over_the_ceiling_is_refused_before_it_is_sent(server, expect_continue):
    user = new_user(server.url, "huge")
    rss_before = server.rss()
    expect = ["Expect: 100-continue"] if expect_continue else []
    sock = raw_upload(server, user.token, f"Content-Length: {10 * 1024**3}", *expect)
    with sock:
        response = read_response(sock)  # not a byte of the body was sent
    head, _, body = response.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413 "), response
    assert b"100 Continue" not in response
    assert json.loads(body)["msg"].startswith("request body over the limit of")
    assert server.rss() - rss_before < 16 * 1024 * 1024


def test_a_body_streamed_without_a_length_is_cut_off_at_the_ceiling(server):
    user = new_user(server.url, "stream")
    rss_before = server.rss()
    attempted = 128 * 1024 * 1024
    sock = raw_upload(server, user.token, "Transfer-Encoding: chunked")
    chunk = b"%x\r\n%s\r\n" % (CHUNK, b"\0" * CHUNK)
    sent = 0
    with sock:
        try:
            while sent < attempted:
                sock.sendall(chunk)
                sent += CHUNK
        except (BrokenPipeError, ConnectionResetError):
            pass
    assert sent < 32 * 1024 * 1024, f"the server took {sent} bytes"
    deadline = time.monotonic() + 5
    while server.open_temporary_files() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.open_temporary_files() == []
    assert list(server.tmpdir.iterdir()) == []
    assert server.rss() - rss_before < 16 * 1024 * 1024
    # And the server carries on.
    status, envelope = post_file(server, user.token, b"still here", "ok.txt", "text/plain")
    assert status == 200, envelope
