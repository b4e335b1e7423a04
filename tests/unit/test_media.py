"""photos.media: validation by decoding, re-encoding without metadata, orientation, thumbnails."""

from __future__ import annotations

import io
import re
import struct
import zlib

import pytest
from PIL import Image, ImageSequence, PngImagePlugin

from photos import media

BUDGET = 50_000_000


def _encode(image: Image.Image, fmt: str, **save) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **save)
    return out.getvalue()


def _open(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def _exif() -> Image.Exif:
    exif = Image.Exif()
    exif[0x010F] = "SpyCam"  # Make
    exif[0x0110] = "X-42"  # Model
    exif[0x0132] = "2024:01:01 12:00:00"  # DateTime
    gps = exif.get_ifd(0x8825)
    gps.update({1: "N", 2: (48.0, 51.0, 29.0), 3: "E", 4: (2.0, 17.0, 40.0)})
    return exif


def _png_declaring(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 1024)) + chunk(b"IEND", b"")


# ---- accepted formats -------------------------------------------------------------------------
def test_jpeg_is_cleaned_and_reencoded():
    data = _encode(Image.new("RGB", (640, 480), "teal"), "JPEG") + b"appended secret bytes"
    clean = media.clean(data, max_pixels=BUDGET)
    assert (clean.content_type, clean.extension, clean.width, clean.height) == ("image/jpeg", "jpg", 640, 480)
    assert b"appended secret bytes" not in clean.data
    assert _open(clean.data).format == "JPEG"


def test_cmyk_and_grey_jpegs_are_accepted():
    for mode in ("CMYK", "L"):
        clean = media.clean(_encode(Image.new(mode, (40, 30)), "JPEG"), max_pixels=BUDGET)
        assert clean.content_type == "image/jpeg"
        assert _open(clean.data).mode in ("RGB", "L")


def test_png_keeps_its_alpha_channel():
    image = Image.new("RGBA", (100, 60), (255, 0, 0, 0))
    image.paste((0, 0, 255, 255), (0, 0, 50, 60))
    clean = media.clean(_encode(image, "PNG"), max_pixels=BUDGET)
    assert (clean.content_type, clean.extension) == ("image/png", "png")
    out = _open(clean.data)
    assert out.mode == "RGBA"
    assert out.getpixel((10, 10))[3] == 255 and out.getpixel((90, 10))[3] == 0
    thumbs = media.thumbnails(clean.data, max_pixels=BUDGET)
    small = _open(thumbs["small"])
    assert small.format == "WEBP" and small.mode == "RGBA"


def test_webp_is_accepted():
    clean = media.clean(_encode(Image.new("RGB", (120, 80), "olive"), "WEBP"), max_pixels=BUDGET)
    assert (clean.content_type, clean.extension, clean.width, clean.height) == ("image/webp", "webp", 120, 80)


def test_animated_gif_stays_animated_and_thumbnails_use_the_first_frame():
    frames = [Image.new("P", (80, 60), i) for i in (10, 200, 90)]
    frames[0].putpalette([c for i in range(256) for c in (i, 255 - i, 0)])
    for frame in frames[1:]:
        frame.putpalette(frames[0].getpalette())
    data = _encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    assert _open(data).n_frames == 3
    clean = media.clean(data, max_pixels=BUDGET)
    assert (clean.content_type, clean.width, clean.height) == ("image/gif", 80, 60)
    out = Image.open(io.BytesIO(clean.data))
    assert out.is_animated and len(list(ImageSequence.Iterator(out))) == 3
    thumbs = media.thumbnails(clean.data, max_pixels=BUDGET)
    first = _open(thumbs["medium"])
    assert first.format == "WEBP" and not getattr(first, "is_animated", False)
    expected = frames[0].convert("RGB").getpixel((5, 5))
    got = first.convert("RGB").getpixel((5, 5))
    assert all(abs(a - b) <= 12 for a, b in zip(got, expected, strict=True)), (got, expected)


def test_animated_webp_stays_animated():
    frames = [Image.new("RGB", (40, 40), c) for c in ("red", "green", "blue")]
    data = _encode(frames[0], "WEBP", save_all=True, append_images=frames[1:], duration=100, loop=0)
    clean = media.clean(data, max_pixels=BUDGET)
    assert clean.content_type == "image/webp" and Image.open(io.BytesIO(clean.data)).n_frames == 3


def test_the_format_comes_from_the_bytes_not_a_name():
    png = _encode(Image.new("RGB", (10, 10)), "PNG")
    assert media.clean(png, max_pixels=BUDGET).content_type == "image/png"


# ---- metadata and orientation -----------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_exif_is_removed(fmt):
    data = _encode(Image.new("RGB", (64, 48), "orange"), fmt, exif=_exif())
    assert b"SpyCam" in data
    clean = media.clean(data, max_pixels=BUDGET)
    assert b"SpyCam" not in clean.data and b"X-42" not in clean.data
    out = _open(clean.data)
    exif = out.getexif()
    assert 0x010F not in exif and 0x0110 not in exif and 0x8825 not in exif and not exif.get_ifd(0x8825)
    assert "exif" not in out.info


def _pnginfo(**text: str) -> PngImagePlugin.PngInfo:
    info = PngImagePlugin.PngInfo()
    for key, value in text.items():
        info.add_itxt(key.replace("_", ":").replace("XML:com:adobe:xmp", "XML:com.adobe.xmp"), value)
    return info


HIDDEN_TEXT = {
    "jpeg-comment": lambda: _encode(Image.new("RGB", (32, 32)), "JPEG", comment=b"SECRET comment"),
    "jpeg-xmp": lambda: _encode(Image.new("RGB", (32, 32)), "JPEG", xmp=b"<x:xmpmeta>SECRET xmp</x:xmpmeta>"),
    "png-text": lambda: _encode(Image.new("RGB", (32, 32)), "PNG", pnginfo=_pnginfo(Author="SECRET author")),
    "png-xmp": lambda: _encode(Image.new("RGB", (32, 32)), "PNG", pnginfo=_pnginfo(XML_com_adobe_xmp="SECRET xmp")),
    "webp-xmp": lambda: _encode(Image.new("RGB", (32, 32)), "WEBP", xmp=b"<x:xmpmeta>SECRET xmp</x:xmpmeta>"),
    "gif-comment": lambda: _encode(Image.new("P", (32, 32)), "GIF", comment=b"SECRET comment"),
    "animated-gif-comment": lambda: _encode(
        Image.new("P", (32, 32)), "GIF", comment=b"SECRET comment", save_all=True, append_images=[Image.new("P", (32, 32), 3)]
    ),
}


@pytest.mark.parametrize("kind", list(HIDDEN_TEXT))
def test_comments_and_xmp_are_removed(kind):
    data = HIDDEN_TEXT[kind]()
    assert b"SECRET" in data
    clean = media.clean(data, max_pixels=BUDGET)
    assert b"SECRET" not in clean.data, kind
    assert "comment" not in _open(clean.data).info


@pytest.mark.parametrize(
    ("orientation", "size"),
    [(1, (60, 40)), (3, (60, 40)), (6, (40, 60)), (8, (40, 60))],
)
def test_exif_orientation_is_applied(orientation, size):
    image = Image.new("RGB", (60, 40), "white")
    image.paste((255, 0, 0), (0, 0, 20, 20))  # a red square in the stored top-left corner
    exif = Image.Exif()
    exif[0x0112] = orientation
    clean = media.clean(_encode(image, "JPEG", exif=exif, quality=95), max_pixels=BUDGET)
    assert (clean.width, clean.height) == size
    out = _open(clean.data)
    assert out.size == size and out.getexif().get(0x0112, 1) == 1
    w, h = size
    corner = {1: (5, 5), 3: (w - 5, h - 5), 6: (w - 5, 5), 8: (5, h - 5)}[orientation]
    r, g, b = out.getpixel(corner)
    assert r > 200 and g < 60 and b < 60, (orientation, corner, (r, g, b))


# ---- thumbnails -------------------------------------------------------------------------------
def test_thumbnail_sizes():
    clean = media.clean(_encode(Image.new("RGB", (2000, 1000), "navy"), "JPEG"), max_pixels=BUDGET)
    thumbs = media.thumbnails(clean.data, max_pixels=BUDGET)
    assert set(thumbs) == {"small", "medium", "large"}
    sizes = {name: _open(data).size for name, data in thumbs.items()}
    assert sizes == {"small": (150, 150), "medium": (640, 320), "large": (1080, 540)}
    assert all(_open(data).format == "WEBP" for data in thumbs.values())


def test_thumbnails_never_upscale():
    clean = media.clean(_encode(Image.new("RGB", (100, 50)), "PNG"), max_pixels=BUDGET)
    sizes = {name: _open(data).size for name, data in media.thumbnails(clean.data, max_pixels=BUDGET).items()}
    assert sizes["medium"] == (100, 50) and sizes["large"] == (100, 50)


# ---- refused input ----------------------------------------------------------------------------
def _says_what_to_send(message: str) -> None:
    """A refusal says what to send, and neither names a Python exception nor repeats Pillow's words."""
    assert "send" in message, message
    assert not re.search(r"[A-Z]\w*(Error|Exception|Warning)\b|cannot identify image|bytes not processed", message), message


@pytest.mark.parametrize(("fmt", "name"), [("BMP", "BMP"), ("TIFF", "TIFF"), ("ICO", "ICO"), ("PPM", "PPM"), ("TGA", "TGA")])
def test_formats_outside_the_list_are_refused_with_their_name(fmt, name):
    data = _encode(Image.new("RGB", (16, 16), "red"), fmt)
    with pytest.raises(media.BadImage) as caught:
        media.clean(data, max_pixels=BUDGET)
    message = str(caught.value)
    assert name in message and "JPEG" in message
    _says_what_to_send(message)


@pytest.mark.parametrize(
    ("data", "word"),
    [
        (b"", "empty"),
        (b"hello, world\n", "JPEG"),
        (b"<svg xmlns='http://www.w3.org/2000/svg'/>", "JPEG"),
        (b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n", "JPEG"),
        (b"\xff\xd8\xff\xe0" + b"\0" * 50, ""),
    ],
    ids=["empty", "text", "svg", "pdf", "jpeg-magic-only"],
)
def test_non_images_are_refused_with_a_message(data, word):
    with pytest.raises(media.BadImage) as caught:
        media.clean(data, max_pixels=BUDGET)
    assert str(caught.value) and word in str(caught.value)
    _says_what_to_send(str(caught.value))
    if data[:1] in (b"h", b"<", b"%"):
        assert str(caught.value) == "this file is not an image we can read: send a JPEG, PNG, WebP or GIF"


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "GIF"])
def test_truncated_images_are_refused(fmt):
    data = _encode(Image.effect_noise((300, 200), 80).convert("RGB"), fmt)
    with pytest.raises(media.BadImage) as caught:
        media.clean(data[: len(data) // 2], max_pixels=BUDGET)
    assert str(caught.value)
    _says_what_to_send(str(caught.value))


def test_pixel_budget_is_enforced_with_a_message():
    data = _encode(Image.new("RGB", (200, 200)), "PNG")
    with pytest.raises(media.BadImage) as caught:
        media.clean(data, max_pixels=10_000)
    assert "200x200" in str(caught.value) and "10,000" in str(caught.value)
    assert media.clean(data, max_pixels=40_000).width == 200  # exactly at the budget is fine
    with pytest.raises(media.BadImage):
        media.thumbnails(data, max_pixels=10_000)


def test_pixel_budget_is_checked_before_decoding():
    with pytest.raises(media.BadImage) as caught:
        media.clean(_png_declaring(9000, 9000), max_pixels=BUDGET)
    assert "9000x9000" in str(caught.value) and "pixels" in str(caught.value)


def test_decompression_bomb_is_refused_saying_it_is_too_large():
    bomb = _png_declaring(20000, 20000)
    assert len(bomb) < 200
    with pytest.raises(media.BadImage) as caught:
        media.clean(bomb, max_pixels=BUDGET)
    assert "pixels" in str(caught.value), str(caught.value)
