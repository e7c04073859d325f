"""Images decoded with Pillow and re-encoded clean, with a thumbnail.

Every pixel of every frame is decoded, so a truncated or damaged file is refused; the
size is checked against the pixel limit before anything is decoded, so a decompression
bomb (a small file of enormous dimensions) costs nothing. The EXIF orientation is
applied to the pixels, then everything but the pixels is dropped (EXIF with its GPS
position, XMP, comments, text chunks): what is stored is Pillow's own encoding of them,
so no byte of the upload is served as it came.
"""

import io
from dataclasses import dataclass
from typing import BinaryIO

from PIL import Image, ImageOps, ImageSequence

from files.kinds import JPEG, PNG, Kind
from infra.errors import ContentTooLarge, UnsupportedType

THUMBNAIL_SIZE = 320
MAX_FRAMES = 1000
# What the encoders need of the decoded metadata: transparency and animation timing,
# and the colour profile (colours, not facts about the picture's author or place).
KEPT_INFO = frozenset({"transparency", "duration", "loop", "icc_profile"})
ENCODER_OPTIONS = {"JPEG": {"quality": 90}, "WEBP": {"quality": 90}, "PNG": {}, "GIF": {}}
# Resized as they are, these would only pick nearest pixels: made RGB(A) first.
PALETTE_MODES = frozenset({"P", "1"})


@dataclass(frozen=True)
class CleanImage:
    data: bytes
    width: int
    height: int
    thumbnail: bytes
    thumbnail_kind: Kind


def clean_image(upload: BinaryIO, kind: Kind, *, max_pixels: int) -> CleanImage:
    """`upload`, of the image kind its magic bytes named, decoded and re-encoded in the
    same format without metadata. ContentTooLarge over `max_pixels` (all frames
    together), UnsupportedType if it does not decode."""
    frames = _decode(upload, kind, max_pixels)
    first = frames[0]
    thumbnail, thumbnail_kind = _thumbnail(first)
    return CleanImage(
        data=_encode(frames, kind),
        width=first.width,
        height=first.height,
        thumbnail=thumbnail,
        thumbnail_kind=thumbnail_kind,
    )


def _decode(upload: BinaryIO, kind: Kind, max_pixels: int) -> list[Image.Image]:
    """Every frame decoded and turned upright, with only KEPT_INFO left."""
    upload.seek(0)
    try:
        image = Image.open(upload, formats=[kind.image])
        frames = _frame_count(image, max_pixels)
        if frames == 1:
            image.load()
            ImageOps.exif_transpose(image, in_place=True)
            decoded = [image]
        else:
            decoded = [ImageOps.exif_transpose(frame) for frame in ImageSequence.Iterator(image)]
    except Image.DecompressionBombError:
        raise _too_many_pixels(max_pixels) from None
    except ContentTooLarge:
        raise
    except Exception:
        # Damaged input makes Pillow raise OSError, SyntaxError, ValueError, EOFError,
        # struct.error and more: whatever it is, this is not a valid image.
        raise UnsupportedType(
            f"not a valid {kind.image} image: it is truncated or damaged"
        ) from None
    for frame in decoded:
        frame.info = {key: value for key, value in frame.info.items() if key in KEPT_INFO}
    return decoded


def _frame_count(image: Image.Image, max_pixels: int) -> int:
    frames = getattr(image, "n_frames", 1)
    if frames > MAX_FRAMES:
        raise ContentTooLarge(f"image refused: more than {MAX_FRAMES} frames")
    width, height = image.size
    if width * height * frames > max_pixels:
        raise _too_many_pixels(max_pixels)
    return frames


def _too_many_pixels(max_pixels: int) -> ContentTooLarge:
    return ContentTooLarge(f"image refused: more than {max_pixels} pixels (all frames together)")


def _encode(frames: list[Image.Image], kind: Kind) -> bytes:
    first = frames[0]
    options = dict(ENCODER_OPTIONS[kind.image])
    if "icc_profile" in first.info:
        options["icc_profile"] = first.info["icc_profile"]
    if len(frames) > 1:
        options.update(
            save_all=True,
            append_images=frames[1:],
            duration=[frame.info.get("duration", 100) for frame in frames],
        )
        if "loop" in first.info:
            options["loop"] = first.info["loop"]
    out = io.BytesIO()
    first.save(out, kind.image, **options)
    return out.getvalue()


def _thumbnail(image: Image.Image) -> tuple[bytes, Kind]:
    """At most THUMBNAIL_SIZE pixels on its longest side: a PNG if the image has
    transparency, else a JPEG."""
    alpha = image.has_transparency_data
    if image.mode in PALETTE_MODES:
        image = image.convert("RGBA" if alpha else "RGB")
    if max(image.size) > THUMBNAIL_SIZE:
        image = ImageOps.contain(image, (THUMBNAIL_SIZE, THUMBNAIL_SIZE), Image.Resampling.LANCZOS)
    mode = "RGBA" if alpha else "L" if image.mode == "L" else "RGB"
    if image.mode != mode:
        image = image.convert(mode)
    kind = PNG if alpha else JPEG
    out = io.BytesIO()
    image.save(out, kind.image, **ENCODER_OPTIONS[kind.image])
    return out.getvalue(), kind
