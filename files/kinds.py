"""What an upload is, decided by its content alone: magic bytes, the structure of a ZIP
archive, or text that decodes as UTF-8 and holds no markup.

The uploaded name and the client's content type are never consulted: they are the
attacker's to choose. HTML, SVG and XML are never accepted, not even inside a file
that calls itself text: a download must never be a page.
"""

import codecs
import re
import zipfile
import zlib
from dataclasses import dataclass
from typing import BinaryIO

from infra.errors import UnsupportedType

ALLOWED = "PNG, JPEG, GIF and WebP images, PDF, ZIP (office documents too) and UTF-8 text"
# How much of an upload the magic bytes are looked for in.
HEAD_SIZE = 16
TEXT_CHUNK = 64 * 1024


@dataclass(frozen=True)
class Kind:
    """A type the server accepts: its MIME type, the extension its files get, and the
    other extensions an uploaded name may keep. `image` is Pillow's format name for
    the images, which are decoded and re-encoded."""

    mime: str
    extension: str
    also: frozenset[str] = frozenset()
    image: str | None = None

    def keeps(self, extension: str) -> bool:
        return extension == self.extension or extension in self.also


PNG = Kind("image/png", "png", image="PNG")
JPEG = Kind("image/jpeg", "jpg", frozenset({"jpeg", "jpe", "jfif"}), image="JPEG")
GIF = Kind("image/gif", "gif", image="GIF")
WEBP = Kind("image/webp", "webp", image="WEBP")
PDF = Kind("application/pdf", "pdf")
ZIP = Kind("application/zip", "zip")
TEXT = Kind("text/plain", "txt", frozenset({"text", "md", "csv", "tsv", "log", "json"}))

_OOXML = "application/vnd.openxmlformats-officedocument."
# Office Open XML documents, told apart by the part every one of them has.
OOXML_PARTS = {
    "word/document.xml": Kind(_OOXML + "wordprocessingml.document", "docx"),
    "xl/workbook.xml": Kind(_OOXML + "spreadsheetml.sheet", "xlsx"),
    "ppt/presentation.xml": Kind(_OOXML + "presentationml.presentation", "pptx"),
}
# OpenDocument and EPUB name their type in a first member called "mimetype".
MIMETYPE_MEMBER = {
    kind.mime.encode(): kind
    for kind in (
        Kind("application/vnd.oasis.opendocument.text", "odt"),
        Kind("application/vnd.oasis.opendocument.spreadsheet", "ods"),
        Kind("application/vnd.oasis.opendocument.presentation", "odp"),
        Kind("application/epub+zip", "epub"),
    )
}

# A control character other than tab, newline, form feed and carriage return (C1
# included), or the start of a tag, comment, doctype or processing instruction.
NOT_PLAIN_TEXT = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f-\x9f]|<[A-Za-z!?/]")


def detect(upload: BinaryIO) -> Kind:
    """The kind of `upload` (read from its start; left at its start), or UnsupportedType."""
    upload.seek(0)
    head = upload.read(HEAD_SIZE)
    upload.seek(0)
    kind = _by_magic(head)
    if kind is ZIP:
        kind = _zip_kind(upload)
    elif kind is None:
        _check_plain_text(upload)
        kind = TEXT
    upload.seek(0)
    return kind


def _by_magic(head: bytes) -> Kind | None:
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if head.startswith(b"\xff\xd8\xff"):
        return JPEG
    if head.startswith((b"GIF87a", b"GIF89a")):
        return GIF
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return WEBP
    if head.startswith(b"%PDF-"):
        return PDF
    if head.startswith(b"PK\x03\x04"):
        return ZIP
    return None


def _zip_kind(upload: BinaryIO) -> Kind:
    """A ZIP whose central directory reads; an office document if it is one. Nothing
    is decompressed (a ZIP bomb costs nothing here), except a mimetype member's first
    bytes."""
    try:
        with zipfile.ZipFile(upload) as archive:
            names = set(archive.namelist())
            if "[Content_Types].xml" in names:
                for part, kind in OOXML_PARTS.items():
                    if part in names:
                        return kind
            if "mimetype" in names:
                return MIMETYPE_MEMBER.get(_first_bytes(archive, "mimetype"), ZIP)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError):
        raise UnsupportedType("not a valid ZIP archive") from None
    return ZIP


def _first_bytes(archive: zipfile.ZipFile, member: str) -> bytes:
    """Up to 100 bytes of `member`; nothing if it is encrypted, damaged or compressed in
    a way Python cannot read (the archive is then just a ZIP)."""
    try:
        with archive.open(member) as opened:
            return opened.read(100).strip()
    except (RuntimeError, NotImplementedError, zlib.error):
        return b""


def _check_plain_text(upload: BinaryIO) -> None:
    """Text is accepted only if it is UTF-8 without control characters and without
    anything that could start markup (`<` before a letter, `!`, `?` or `/`): HTML or
    SVG never passes as text. Read in chunks, so a large file is never decoded whole."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    tail = ""
    try:
        while chunk := upload.read(TEXT_CHUNK):
            text = tail + decoder.decode(chunk)
            _check_text(text)
            tail = text[-1:]
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        raise UnsupportedType(f"file type not allowed: only {ALLOWED}") from None


def _check_text(text: str) -> None:
    found = NOT_PLAIN_TEXT.search(text)
    if found is None:
        return
    if found.group().startswith("<"):
        raise UnsupportedType("HTML, SVG, XML and other markup are not allowed")
    raise UnsupportedType(f"file type not allowed: only {ALLOWED}")
