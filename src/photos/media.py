"""Photo validation and processing with Pillow.

An upload is accepted only if it decodes as a JPEG, PNG, WebP or GIF within the pixel budget,
whatever its name or declared type. The stored original is re-encoded from the decoded pixels,
which drops EXIF (GPS position, camera serial) and any bytes appended to the file; the EXIF
orientation is applied first so the photo stays the right way up.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

from PIL import Image, ImageOps, UnidentifiedImageError

ACCEPTED = "a JPEG, PNG, WebP or GIF"  # what a message asks for instead: the keys of FORMATS
FORMATS = {"JPEG": ("image/jpeg", "jpg"), "PNG": ("image/png", "png"), "WEBP": ("image/webp", "webp"), "GIF": ("image/gif", "gif")}
THUMBNAIL_SIZES = {"small": 150, "medium": 640, "large": 1080}  # square crop for small; fit for others


class BadImage(ValueError):
    """The upload is not an image we accept; the message says what to send instead. It never names
    the library's exception nor repeats its text: a person cannot act on "UnidentifiedImageError"."""


@dataclass(frozen=True)
class CleanImage:
    data: bytes
    content_type: str
    extension: str
    width: int
    height: int


def _open(data: bytes, max_pixels: int) -> Image.Image:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            if image.format not in FORMATS:
                raise BadImage(f"this is a {image.format} image, a format we do not take: send {ACCEPTED}")
            width, height = image.size
            if width * height > max_pixels:
                raise BadImage(f"image is {width}x{height}: more than {max_pixels:,} pixels; send a smaller one")
            image.load()
            return image
    except BadImage:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise BadImage(f"the image has more than {max_pixels:,} pixels; send a smaller one") from None
    except UnidentifiedImageError:
        raise BadImage(f"this file is not an image we can read: send {ACCEPTED}") from None
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError, MemoryError):
        raise BadImage(f"the image is corrupt or truncated: send the whole file again, or save it again as {ACCEPTED}") from None


def clean(data: bytes, *, max_pixels: int) -> CleanImage:
    """Validate ``data`` by decoding it and return a re-encoded copy without metadata."""
    if not data:
        raise BadImage("the photo is empty: send an image file")
    image = _open(data, max_pixels)
    fmt = image.format
    content_type, extension = FORMATS[fmt]
    animated = getattr(image, "is_animated", False) and fmt in ("GIF", "WEBP")
    image.info.pop("comment", None)  # JPEG and GIF writers would copy it: it can hold private text
    out = io.BytesIO()
    try:
        if animated:
            image.save(out, format=fmt, save_all=True, loop=image.info.get("loop", 0))
        else:
            upright = ImageOps.exif_transpose(image)
            upright.info.pop("comment", None)
            if fmt == "JPEG":
                upright = upright.convert("RGB") if upright.mode not in ("RGB", "L") else upright
                upright.save(out, format="JPEG", quality=90, optimize=True)
            elif fmt == "WEBP":
                upright.save(out, format="WEBP", quality=90)
            else:
                upright.save(out, format=fmt)
            image = upright
    except (OSError, ValueError):
        raise BadImage("the image could not be processed: save it again as a plain JPEG or PNG and send that") from None
    return CleanImage(out.getvalue(), content_type, extension, image.width, image.height)


def thumbnails(data: bytes, *, max_pixels: int) -> dict[str, bytes]:
    """WebP thumbnails of a cleaned photo, by size name (the first frame of an animation)."""
    image = _open(data, max_pixels)
    image.seek(0)
    base = image.convert("RGBA" if image.mode in ("RGBA", "LA", "P") else "RGB")
    result = {}
    for name, size in THUMBNAIL_SIZES.items():
        if name == "small":
            thumb = ImageOps.fit(base, (size, size), Image.Resampling.LANCZOS)
        else:
            thumb = base.copy()
            thumb.thumbnail((size, size), Image.Resampling.LANCZOS)
        out = io.BytesIO()
        thumb.save(out, format="WEBP", quality=80, method=4)
        result[name] = out.getvalue()
    return result
