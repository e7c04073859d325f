"""An upload's body is counted as it streams in and refused the moment it passes the
limit: never read whole, never held whole in memory, never left on disk. (The real
server's own ceiling, before the application, is in tests/e2e/test_files_e2e.py.)"""

import os
import tracemalloc
from pathlib import Path

import pytest

from files.models import File
from tests.files_helpers import CountingStream, multipart, post_upload

pytestmark = pytest.mark.usefixtures("upload_sandbox")

LIMIT = 4 * 1024 * 1024
CHUNK = 64 * 1024  # Django's multipart parser reads this much at a time


@pytest.fixture
def upload_dir(settings, tmp_path) -> Path:
    """Where a spooled upload rolls over to disk (beyond 256 KiB in memory)."""
    directory = tmp_path / "upload-tmp"
    directory.mkdir()
    settings.FILE_UPLOAD_TEMP_DIR = str(directory)
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 256 * 1024
    settings.RIM_UPLOAD_MAX = LIMIT
    return directory


def open_files_under(directory: Path) -> list[str]:
    """This process's open file descriptors into `directory` (unlinked ones included)."""
    links = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            links.append(os.readlink(f"/proc/self/fd/{fd}"))
        except OSError:
            continue
    return [link for link in links if link.startswith(str(directory))]


def file_part_head() -> tuple[bytes, str]:
    """The start of a multipart body whose `file` part goes on for ever."""
    body, content_type = multipart([("file", "huge.bin", b"", "application/octet-stream")])
    head = body[: body.index(b"\r\n\r\n") + 4]
    return head, content_type


def stream_upload(client, stream: CountingStream, content_type: str):
    return post_upload(
        client,
        b"",
        content_type,
        **{"wsgi.input": stream, "CONTENT_LENGTH": str(stream.length)},
    )


def test_a_huge_body_is_refused_on_its_content_length_before_a_byte_is_read(
    alice_client, file_storage, upload_dir
):
    head, content_type = file_part_head()
    stream = CountingStream(head, length=10 * 1024**3)  # 10 GiB announced
    status, envelope = stream_upload(alice_client, stream, content_type)
    assert status == 413 and envelope["msg"] == f"file over the upload limit of {LIMIT} bytes"
    assert stream.read_bytes == 0
    assert File.objects.count() == 0 and file_storage.names() == set()


def test_a_body_just_over_the_limit_plus_the_multipart_allowance_is_refused_at_once(
    alice_client, settings, upload_dir
):
    head, content_type = file_part_head()
    stream = CountingStream(head, length=LIMIT + settings.RIM_MULTIPART_ALLOWANCE + 1)
    assert stream_upload(alice_client, stream, content_type)[0] == 413
    assert stream.read_bytes == 0


def test_a_file_part_is_cut_off_as_it_passes_the_limit_while_it_streams(
    alice_client, file_storage, settings, upload_dir
):
    # A Content-Length that passes the first check (a generous allowance), and a file
    # part that goes on far beyond the limit: the counting handler stops reading it.
    settings.RIM_MULTIPART_ALLOWANCE = 256 * 1024 * 1024
    head, content_type = file_part_head()
    stream = CountingStream(head, length=LIMIT + settings.RIM_MULTIPART_ALLOWANCE)
    tracemalloc.start()
    try:
        status, envelope = stream_upload(alice_client, stream, content_type)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert status == 413, envelope
    assert stream.read_bytes <= LIMIT + len(head) + 3 * CHUNK  # of 260 MiB
    assert peak < LIMIT // 4, f"{peak} bytes held at once"
    assert open_files_under(upload_dir) == []
    assert list(upload_dir.iterdir()) == []
    assert File.objects.count() == 0 and file_storage.names() == set()


def test_an_upload_within_the_limit_rolls_over_to_an_unnamed_temporary_file(
    alice_client, file_storage, upload_dir
):
    data = b"plain text line\n" * (LIMIT // 16)  # exactly the limit, 4 x the memory part
    body, content_type = multipart([("file", "big.txt", data, "text/plain")])
    stream = CountingStream(body)
    status, envelope = stream_upload(alice_client, stream, content_type)
    assert status == 200, envelope
    assert envelope["data"]["size"] == LIMIT
    assert list(upload_dir.iterdir()) == []  # never a named file there
    assert open_files_under(upload_dir) == []  # and closed once stored
    assert len(file_storage.names()) == 1


def test_a_body_without_a_content_length_is_not_read(alice_client, upload_dir):
    """Django reads no body without a Content-Length: nothing is parsed, nothing read."""
    head, content_type = file_part_head()
    stream = CountingStream(head, length=10 * 1024**3)
    status, envelope = post_upload(alice_client, b"", content_type, **{"wsgi.input": stream})
    assert status == 400, envelope
    assert stream.read_bytes == 0
