"""The HTTP headers a download is served with, shared by the streamed responses and
the signed object-storage URLs (which ask the store to send the same ones)."""

from urllib.parse import quote

# Nothing in a download runs, loads or is framed: even a file a browser mistook for a
# page would be an inert, sandboxed one.
CONTENT_SECURITY_POLICY = "default-src 'none'; sandbox"


def content_type(mime: str) -> str:
    return f"{mime}; charset=utf-8" if mime.startswith("text/") else mime


def content_disposition(filename: str, *, inline: bool) -> str:
    """RFC 6266: an ASCII `filename` for old clients, the exact name in `filename*`."""
    fallback = "".join(char if _plain_ascii(char) else "_" for char in filename)
    disposition = "inline" if inline else "attachment"
    return f"{disposition}; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


def _plain_ascii(char: str) -> bool:
    return " " <= char < "\x7f" and char not in '"\\'
