"""Helpers for the files tests: the two stores an upload can go to (a directory and a
real S3 API on loopback, moto's server in a subprocess), what each holds, and uploads
of every kind made on the spot.

`file_storage` is parametrised: a test that takes it runs once per store.
"""

import functools
import io
import json
import signal
import struct
import subprocess
import sys
import uuid
import zipfile
import zlib
from pathlib import Path

import boto3
import pytest
from django.core.files.storage import storages
from PIL import ExifTags, Image

from tests.live import free_port, wait_for_port

UPLOAD = "/api/file/upload"
FILE_KEYS = {"id", "url", "name", "size", "mime", "width", "height", "thumbUrl"}
S3_REGION = "us-east-1"
S3_KEYS = {"access_key": "rim-test", "secret_key": "rim-test-secret"}


class MotoServer:
    """moto's S3 server (`python -m moto.server`) on a free loopback port."""

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        log = (self.workdir / "moto.log").open("a")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_for_port(self.port, timeout=60, process=self.process)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=15)

    def client(self):
        return boto3.client(
            "s3",
            endpoint_url=self.url,
            region_name=S3_REGION,
            aws_access_key_id=S3_KEYS["access_key"],
            aws_secret_access_key=S3_KEYS["secret_key"],
        )


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory):
    """Started once per test run. A moto that does not start fails the tests that need
    it (wait_for_port raises): they are never skipped."""
    server = MotoServer(tmp_path_factory.mktemp("moto"))
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture
def alice_client(client_for, alice):
    return client_for(alice)


@pytest.fixture
def upload_sandbox(settings, tmp_path):
    """Every files test: uploads go to a directory of the test's own (never the
    project's var/media), and are not throttled (only the throttling test counts them).
    Never cache.clear(): on Redis that is FLUSHDB, under every other test's feet."""
    store = FilesystemStore(tmp_path / "media")
    settings.STORAGES = {**settings.STORAGES, "default": store.storage_setting()}
    settings.RIM_UPLOAD_RATE = None


class FilesystemStore:
    name = "filesystem"

    def __init__(self, root: Path):
        self.root = root

    def storage_setting(self) -> dict:
        return {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": self.root},
        }

    def names(self) -> set[str]:
        if not self.root.exists():
            return set()
        return {str(path.relative_to(self.root)) for path in self.root.rglob("*") if path.is_file()}


class S3Store:
    name = "s3"

    def __init__(self, moto: MotoServer):
        self.moto = moto
        self.bucket = f"rim-test-{uuid.uuid4().hex[:12]}"
        self.client = moto.client()
        self.client.create_bucket(Bucket=self.bucket)

    def storage_setting(self) -> dict:
        return {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": self.bucket,
                "endpoint_url": self.moto.url,
                "region_name": S3_REGION,
                "addressing_style": "path",
                "signature_version": "s3v4",
                "querystring_expire": 300,
                "file_overwrite": False,
                "default_acl": None,
                **S3_KEYS,
            },
        }

    def names(self) -> set[str]:
        listing = self.client.list_objects_v2(Bucket=self.bucket)
        return {item["Key"] for item in listing.get("Contents", [])}

    def read(self, name: str) -> bytes:
        return self.client.get_object(Bucket=self.bucket, Key=name)["Body"].read()


S3 = pytest.param("s3", marks=pytest.mark.s3)


@pytest.fixture(params=["filesystem", S3])
def file_storage(request, upload_sandbox, settings, tmp_path):
    """The default storage is a fresh directory, or a fresh bucket on moto; returns
    the store, to look at what it holds."""
    if request.param == "filesystem":
        store = FilesystemStore(tmp_path / "media")
    else:
        store = S3Store(request.getfixturevalue("moto_server"))
    settings.STORAGES = {**settings.STORAGES, "default": store.storage_setting()}
    return store


def stored_bytes(name: str) -> bytes:
    with storages["default"].open(name, "rb") as stored:
        return stored.read()


# Uploads


def image_bytes(
    fmt: str = "PNG", size: tuple[int, int] = (64, 48), mode: str = "RGB", **save
) -> bytes:
    image = Image.new(mode, size, "red" if mode in ("RGB", "RGBA") else 1)
    out = io.BytesIO()
    image.save(out, fmt, **save)
    return out.getvalue()


def gps_exif(orientation: int | None = None) -> Image.Exif:
    """EXIF naming a camera and a place (and an orientation, if given)."""
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "SpyCam"
    exif[ExifTags.Base.Model] = "Model-X-1000"
    if orientation is not None:
        exif[ExifTags.Base.Orientation] = orientation
    exif[ExifTags.IFD.GPSInfo] = {
        ExifTags.GPS.GPSLatitudeRef: "N",
        ExifTags.GPS.GPSLatitude: (48.0, 51.0, 29.0),
        ExifTags.GPS.GPSLongitudeRef: "E",
        ExifTags.GPS.GPSLongitude: (2.0, 17.0, 40.0),
    }
    return exif


@functools.cache
def bomb_png(width: int = 20_000, height: int = 20_000) -> bytes:
    """A valid PNG of width by height black pixels (1 bit each): a few dozen kilobytes
    that would decode to hundreds of megabytes."""
    row = b"\0" * (1 + (width + 7) // 8)  # filter byte, then the row's bits
    pixels = zlib.compress(row * height, 9)
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # 1-bit greyscale
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", pixels)
        + (_png_chunk(b"IEND", b""))
    )


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def zip_bytes(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return out.getvalue()


def docx_bytes() -> bytes:
    return zip_bytes(
        {
            "[Content_Types].xml": b"<Types/>",
            "word/document.xml": b"<document/>",
        }
    )


def multipart(
    files: list[tuple[str, str, bytes, str]], fields: dict[str, str] | None = None
) -> tuple[bytes, str]:
    """A multipart/form-data body of (field, filename, data, content type) parts, and
    its Content-Type."""
    boundary = uuid.uuid4().hex
    parts = []
    for name, value in (fields or {}).items():
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
            + value.encode()
            + b"\r\n"
        )
    for field, filename, data, content_type in files:
        head = (
            f"--{boundary}\r\n"
            f'Content-Disposition: form-data; name="{field}"; filename="{filename}"\r\n'
            f"Content-Type: {content_type}\r\n\r\n"
        )
        parts.append(head.encode() + data + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def upload(client, data: bytes, name: str = "f.bin", content_type="application/octet-stream"):
    """POST one file part named `file`; (HTTP status, envelope)."""
    body, multipart_type = multipart([("file", name, data, content_type)])
    return post_upload(client, body, multipart_type)


def post_upload(client, body: bytes, content_type: str, **extra):
    """POST `body` (or, if empty, the "wsgi.input" in `extra`) to the upload route."""
    response = client.post(
        UPLOAD, data=body, content_type=content_type, CONTENT_TYPE=content_type, **extra
    )
    envelope = json.loads(response.content)
    assert set(envelope) == {"ok", "code", "msg", "data"}, envelope
    assert envelope["code"] == response.status_code, envelope
    return response.status_code, envelope


def uploaded(client, data: bytes, name: str = "f.bin", content_type="application/octet-stream"):
    status, envelope = upload(client, data, name, content_type)
    assert status == 200, envelope
    assert set(envelope["data"]) == FILE_KEYS, envelope
    return envelope["data"]


class CountingStream:
    """A request body read from `data` (then zero bytes, endlessly, up to `length`),
    counting what the server reads of it."""

    def __init__(self, data: bytes = b"", length: int | None = None):
        self.data = data
        self.length = len(data) if length is None else length
        self.read_bytes = 0

    def read(self, size: int = -1) -> bytes:
        left = self.length - self.read_bytes
        size = left if size is None or size < 0 else min(size, left)
        start = self.read_bytes
        chunk = self.data[start : start + size]
        chunk += b"\0" * (size - len(chunk))
        self.read_bytes += size
        return chunk

    def readline(self, size: int = -1) -> bytes:
        return self.read(size)
