"""The upload corpus: what the one image opener refuses, and what the re-encoding of uploads keeps
(pixels, orientation, format) and drops (every kind of metadata)."""

from __future__ import annotations

import io
import struct
import time
import zlib
from typing import Any
from unittest import mock

import pytest
from PIL import Image, ImageFile, PngImagePlugin

from core.errors import InvalidParams
from media.images import image_inspect, image_open, image_sanitize
from media.tests.images import (
    BLUE,
    PNG_SIGNATURE,
    RED,
    XMP_WITH_GPS,
    camera_exif,
    encode,
    jpeg_with_size,
    pixel,
    png_chunk,
    png_header_bomb,
    product_photo,
    two_tone,
)


def refused(data: bytes) -> InvalidParams:
    with pytest.raises(InvalidParams) as caught:
        image_inspect(data=data)
    with pytest.raises(InvalidParams):
        image_sanitize(data=data)
    return caught.value


def reopened(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def near(pixel: Any, colour: tuple[int, int, int], tolerance: int = 12) -> bool:
    return all(abs(a - b) <= tolerance for a, b in zip(pixel, colour, strict=False))


# --- accepted -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fmt,content_type,ext", [("JPEG", "image/jpeg", "jpg"), ("PNG", "image/png", "png"), ("WEBP", "image/webp", "webp")]
)
def test_jpeg_png_and_webp_are_accepted_in_their_own_format(fmt: str, content_type: str, ext: str) -> None:
    data = product_photo(fmt=fmt)
    info = image_inspect(data=data)
    assert (info.content_type, info.ext, info.width, info.height, info.size) == (content_type, ext, 320, 240, len(data))
    stored, stored_info = image_sanitize(data=data)
    assert reopened(stored).format == fmt
    assert (stored_info.content_type, stored_info.ext, stored_info.width, stored_info.height) == (
        content_type,
        ext,
        320,
        240,
    )
    assert stored_info.size == len(stored)


def test_the_opener_hands_out_the_decoded_first_frame() -> None:
    with image_open(data=product_photo(fmt="JPEG")) as (image, info):
        assert image.size == (info.width, info.height) == (320, 240)
        assert near(image.getpixel((160, 120)), (0xB0, 0x1C, 0x2E))


# --- refused ------------------------------------------------------------------------------------

NOT_IMAGES = {
    "empty": b"",
    "pdf": b"%PDF-1.4\n1 0 obj << >> endobj\n",
    "html": b"<!doctype html><script>alert(1)</script>",
    "svg": b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
    "zip": b"PK\x03\x04" + b"\x00" * 64,
    "random": bytes(range(256)) * 8,
    "png signature then html": b"\x89PNG\r\n\x1a\n<html><script>alert(1)</script></html>",
    "jpeg markers then html": b"\xff\xd8\xff\xe0<html><script>alert(1)</script></html>",
}


@pytest.mark.parametrize("name", NOT_IMAGES)
def test_non_images_and_polyglots_that_are_not_images_are_refused(name: str) -> None:
    assert refused(NOT_IMAGES[name]).text_en in ("Only JPEG, PNG and WebP images are accepted", "Not a readable image")


@pytest.mark.parametrize("fmt", ["GIF", "BMP", "TIFF", "ICO", "PPM"])
def test_other_image_formats_are_refused(fmt: str) -> None:
    assert (
        refused(encode(Image.new("RGB", (16, 16), RED), fmt)).text_en == "Only JPEG, PNG and WebP images are accepted"
    )


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_truncated_files_are_refused(fmt: str) -> None:
    data = product_photo(fmt=fmt, size=(400, 300))
    refused(data[: len(data) // 2])
    refused(data[: len(data) * 3 // 4])


def test_animated_gif_is_refused() -> None:
    gif = encode(Image.new("RGB", (16, 16), RED), "GIF", save_all=True, append_images=[Image.new("RGB", (16, 16))])
    refused(gif)


@pytest.mark.parametrize("fmt", ["WEBP", "PNG"])
def test_animated_webp_and_png_are_refused(fmt: str) -> None:
    animated = encode(two_tone(), fmt, save_all=True, append_images=[two_tone().rotate(180)])
    assert getattr(reopened(animated), "n_frames", 1) == 2
    assert refused(animated).text_en == "Animated images are not accepted"


# Pillow warns when it opens a header past its own limit; ours is lower and refuses it next.
@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_a_header_bomb_is_refused_quickly_without_decoding() -> None:
    bomb = png_header_bomb(13_000, 13_000)  # 169 megapixels
    assert len(bomb) < 20 * 1024 * 1024
    started = time.monotonic()
    with mock.patch.object(ImageFile.ImageFile, "load", side_effect=AssertionError("decoded")):
        error = refused(bomb)
    assert time.monotonic() - started < 1.0
    assert error.text_en in ("The image exceeds 40 megapixels", "The image is too large to decode")


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
@pytest.mark.parametrize(
    "make,size",
    [(png_header_bomb, (8_000, 6_000)), (png_header_bomb, (30_000, 30_000)), (jpeg_with_size, (60_000, 60_000))],
)
def test_more_than_40_megapixels_is_refused_before_decoding(make: Any, size: tuple[int, int]) -> None:
    data = make(*size)
    with mock.patch.object(ImageFile.ImageFile, "load", side_effect=AssertionError("decoded")):
        refused(data)


def test_the_pixel_cap_is_inclusive(settings: Any) -> None:
    settings.UPLOAD_MAX_PIXELS = 100 * 100
    assert image_inspect(data=encode(Image.new("RGB", (100, 100)), "PNG")).width == 100
    assert refused(encode(Image.new("RGB", (100, 101)), "PNG")).text_en == "The image exceeds 40 megapixels"


def test_the_byte_cap_applies_before_anything_and_to_the_re_encoded_file(settings: Any) -> None:
    data = product_photo(fmt="JPEG")
    settings.UPLOAD_MAX_BYTES = len(data) - 1
    assert refused(data).text_en == "The image exceeds 20 MB"
    # A low-quality JPEG grows when stored at quality 92: the stored file must fit the cap too.
    small = encode(Image.effect_noise((300, 300), 60).convert("RGB"), "JPEG", quality=5)
    settings.UPLOAD_MAX_BYTES = len(small) + 10
    image_inspect(data=small)
    with pytest.raises(InvalidParams, match="20 MB"):
        image_sanitize(data=small)


# --- handled right ------------------------------------------------------------------------------


def test_an_mpo_camera_file_is_a_jpeg_and_is_stored_as_its_first_frame() -> None:
    mpo = encode(
        Image.new("RGB", (64, 48), RED), "MPO", save_all=True, append_images=[Image.new("RGB", (64, 48), BLUE)]
    )
    assert reopened(mpo).format == "MPO"
    info = image_inspect(data=mpo)
    assert (info.content_type, info.ext, info.width, info.height) == ("image/jpeg", "jpg", 64, 48)
    stored, stored_info = image_sanitize(data=mpo)
    image = reopened(stored)
    assert image.format == "JPEG" and "mpinfo" not in image.info and stored_info.ext == "jpg"
    assert near(image.getpixel((32, 24)), RED)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_orientation_is_applied_then_every_bit_of_metadata_dropped(fmt: str) -> None:
    extra: dict[str, Any] = {"exif": camera_exif(orientation=6), "xmp": XMP_WITH_GPS}
    if fmt == "JPEG":
        extra["comment"] = b"shot at 31.2289N 121.4695E"
    if fmt == "PNG":
        text = PngImagePlugin.PngInfo()
        text.add_text("Location", "31.2289N 121.4695E")
        extra["pnginfo"] = text
    data = encode(two_tone((40, 20)), fmt, **extra)
    assert reopened(data).getexif().get_ifd(0x8825), "the fixture carries GPS"

    stored, info = image_sanitize(data=data)
    image = reopened(stored)
    assert image.format == fmt
    # Orientation 6 means "turn 90 degrees clockwise to view": the red left half ends on top.
    assert image.size == (info.width, info.height) == (20, 40)
    assert near(image.getpixel((10, 5)), RED) and near(image.getpixel((10, 35)), BLUE)
    assert not image.getexif() and not image.getexif().get_ifd(0x8825)
    assert not {"exif", "xmp", "XML:com.adobe.xmp", "comment", "Location"} & set(image.info)
    assert b"31.2289" not in stored and b"GPSLatitude" not in stored and b"TestCam" not in stored


def test_the_icc_colour_profile_is_kept() -> None:
    from PIL import ImageCms

    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    stored, _ = image_sanitize(data=encode(two_tone(), "JPEG", icc_profile=profile))
    assert reopened(stored).info.get("icc_profile") == profile


def test_cmyk_jpeg_is_stored_as_rgb() -> None:
    cmyk = encode(Image.new("CMYK", (32, 32), (0, 255, 255, 0)), "JPEG")
    assert reopened(cmyk).mode == "CMYK"
    stored, info = image_sanitize(data=cmyk)
    image = reopened(stored)
    assert (image.format, image.mode, info.content_type) == ("JPEG", "RGB", "image/jpeg")
    assert near(image.getpixel((16, 16)), RED)


def test_16_bit_greyscale_png_is_scaled_not_clipped() -> None:
    deep = Image.new("I;16", (3, 1))
    for x, value in enumerate((0, 40_000, 65_535)):
        deep.putpixel((x, 0), value)
    stored, _ = image_sanitize(data=encode(deep, "PNG"))
    image = reopened(stored)
    assert (image.format, image.mode) == ("PNG", "L")
    assert [image.getpixel((x, 0)) for x in range(3)] == [0, 156, 255]


def test_16_bit_colour_png_is_accepted() -> None:
    # Pillow has no 16-bit RGB mode to build one with; this is a 2x1 16-bit RGB PNG, red then blue.
    rows = b"\x00" + struct.pack(">6H", 65535, 0, 0, 0, 0, 65535)
    deep = (
        PNG_SIGNATURE
        + png_chunk(b"IHDR", struct.pack(">IIBBBBB", 2, 1, 16, 2, 0, 0, 0))
        + png_chunk(b"IDAT", zlib.compress(rows))
        + png_chunk(b"IEND", b"")
    )
    stored, _ = image_sanitize(data=deep)
    image = reopened(stored)
    assert image.getpixel((0, 0)) == RED and image.getpixel((1, 0)) == BLUE


def test_palette_png_keeps_its_palette_and_transparency() -> None:
    palette = Image.new("P", (4, 1))
    palette.putpalette([255, 0, 0, 0, 0, 255, 0, 255, 0])
    palette.putdata([0, 1, 2, 1])
    data = encode(palette, "PNG", transparency=1)
    stored, _ = image_sanitize(data=data)
    image = reopened(stored)
    assert image.mode == "P"
    rgba = image.convert("RGBA")
    assert rgba.getpixel((0, 0)) == (255, 0, 0, 255)
    assert pixel(rgba, (1, 0))[3] == 0
    assert rgba.getpixel((2, 0)) == (0, 255, 0, 255)


def test_transparency_survives_in_png_and_webp() -> None:
    clear = Image.new("RGBA", (8, 8), (255, 0, 0, 0))
    clear.putpixel((0, 0), (0, 0, 255, 255))
    for fmt in ("PNG", "WEBP"):
        image = reopened(image_sanitize(data=encode(clear, fmt, lossless=True))[0]).convert("RGBA")
        assert pixel(image, (4, 4))[3] == 0 and pixel(image, (0, 0))[3] == 255


def test_a_real_image_with_a_payload_appended_is_stored_without_it() -> None:
    payload = b"PK\x03\x04<html><script>alert(1)</script></html>"
    data = product_photo(fmt="PNG") + payload
    stored, info = image_sanitize(data=data)
    assert payload not in stored and b"<script>" not in stored
    assert reopened(stored).size == (info.width, info.height) == (320, 240)
