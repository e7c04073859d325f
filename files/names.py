"""The name an upload is kept and offered under: the uploaded name made harmless.

No directory part, no control or invisible formatting characters (a right-to-left
override would show "photo‮gpj.exe" as "photoexe.jpg"), no leading dots, a bounded
length, and an extension that matches the content: the uploaded one if the kind allows
it, else the kind's own.
"""

import unicodedata

from files.kinds import Kind

MAX_STEM = 100
FALLBACK_STEM = "file"


def clean_name(uploaded: str, kind: Kind) -> str:
    name = unicodedata.normalize("NFC", uploaded).replace("\\", "/").rsplit("/", 1)[-1]
    name = " ".join("".join(_visible(char) for char in name).split())
    stem, dot, extension = name.rpartition(".")
    if not dot:
        stem, extension = name, ""
    extension = extension.lower()
    if not kind.keeps(extension):
        extension = kind.extension
    stem = stem.strip(" .")[:MAX_STEM].rstrip(" .") or FALLBACK_STEM
    return f"{stem}.{extension}"


def _visible(char: str) -> str:
    """Control, format, private-use and unassigned characters go; every kind of space
    and line break becomes a plain space."""
    category = unicodedata.category(char)
    if category.startswith("Z") or char in "\t\n\r":
        return " "
    if category.startswith("C"):
        return ""
    return char
