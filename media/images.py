"""The one way the product opens image bytes — uploads, URL inputs and provider results alike —
and the re-encoding that stores uploads without their metadata."""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from PIL import Image, ImageOps, UnidentifiedImageError

from core import errors

FORMATS = {"JPEG": ("image/jpeg", "jpg"), "PNG": ("image/png", "png"), "WEBP": ("image/webp", "webp")}
# What Pillow calls a JPEG carrying an MPF block (camera MPO files): extra frames such as
# previews or the second eye of a stereo pair follow the photo, which is the first frame.
JPEG_WITH_FRAMES = "MPO"
QUALITY = 92

REFUSALS = {
    "bytes": ("图片不能超过 20 MB", "The image exceeds 20 MB"),
    "format": ("仅支持 JPEG、PNG、WebP 图片", "Only JPEG, PNG and WebP images are accepted"),
    "pixels": ("图片像素不能超过 4000 万", "The image exceeds 40 megapixels"),
    "bomb": ("图片像素过大", "The image is too large to decode"),
    "animated": ("不支持动图", "Animated images are not accepted"),
    "unreadable": ("无法识别的图片文件", "Not a readable image"),
}


@dataclass(frozen=True)
class ImageInfo:
    content_type: str
    ext: str
    width: int
    height: int
    size: int


def _refusal(reason: str) -> errors.InvalidParams:
    return errors.InvalidParams(*REFUSALS[reason])


def _format(image: Image.Image) -> str:
    return "JPEG" if image.format == JPEG_WITH_FRAMES else str(image.format)


def _info(fmt: str, size: tuple[int, int], length: int) -> ImageInfo:
    content_type, ext = FORMATS[fmt]
    return ImageInfo(content_type=content_type, ext=ext, width=size[0], height=size[1], size=length)


def _open_checked(data: bytes) -> Image.Image:
    try:
        # Only the accepted formats' parsers ever see the bytes.
        image = Image.open(io.BytesIO(data), formats=list(FORMATS))
    except Image.DecompressionBombError as exc:
        raise _refusal("bomb") from exc
    except UnidentifiedImageError as exc:
        raise _refusal("format") from exc
    except Exception as exc:  # Pillow's parsers fail on hostile headers with many exception types.
        raise _refusal("unreadable") from exc
    try:
        width, height = image.size
        if width * height > settings.UPLOAD_MAX_PIXELS:
            raise _refusal("pixels")
        if image.format != JPEG_WITH_FRAMES and getattr(image, "n_frames", 1) > 1:
            raise _refusal("animated")
        try:
            image.load()
        except Exception as exc:  # truncated or corrupt data, whatever the decoder calls it
            raise _refusal("unreadable") from exc
    except BaseException:
        image.close()
        raise
    return image


@contextmanager
def image_open(*, data: bytes) -> Iterator[tuple[Image.Image, ImageInfo]]:
    """Every image the product opens goes through here: `data` as a decoded JPEG, PNG or WebP
    (first frame) and what it is, or InvalidParams.

    Cheapest checks first: the byte cap; then what the header says — format, animation, pixel
    count — before a single pixel is decoded, so a decompression bomb costs a few reads; then the
    full decode, which finds truncated and corrupt files. An MPO is a JPEG. Animated WebP and PNG
    are refused: a product photo is one still, and which frame was meant would be a guess."""
    if len(data) > settings.UPLOAD_MAX_BYTES:
        raise _refusal("bytes")
    with _open_checked(data) as image:
        yield image, _info(_format(image), image.size, len(data))


def image_inspect(*, data: bytes) -> ImageInfo:
    """What `data` is, for bytes that are passed on as they are (see image_open)."""
    with image_open(data=data) as (_image, info):
        return info


def _plain_pixels(image: Image.Image) -> Image.Image:
    """The pixels turned upright by their EXIF orientation, in a mode every reader shares."""
    ImageOps.exif_transpose(image, in_place=True)
    if image.mode == "CMYK":
        return image.convert("RGB")
    if image.mode.startswith("I"):
        # 16-bit greyscale: scaled to 8 bits, where a plain conversion would clip it to white.
        return image.point(lambda value: value / 256).convert("L")
    return image


def _encoder_params(
    source_info: dict[str | tuple[int, int], Any], source_mode: str, pixels: Image.Image, fmt: str
) -> dict[str, Any]:
    params: dict[str, Any] = {}
    if fmt in ("JPEG", "WEBP"):
        params["quality"] = QUALITY
    # The colour profile says what the colours mean; a CMYK one no longer fits the RGB pixels.
    if source_info.get("icc_profile") and source_mode != "CMYK":
        params["icc_profile"] = source_info["icc_profile"]
    if fmt == "PNG" and "transparency" in source_info and pixels.mode == source_mode:
        params["transparency"] = source_info["transparency"]
    return params


def image_sanitize(*, data: bytes) -> tuple[bytes, ImageInfo]:
    """`data` re-encoded for storing: the pixels and the colour profile, nothing else.

    - EXIF orientation is applied first, so the photo stays upright once the EXIF is gone; EXIF
      (GPS included), XMP, comments, PNG text and anything appended after the image are dropped.
    - The format stays: JPEG at quality 92 (an MPO becomes a plain JPEG of its first frame), PNG
      (lossless), WebP at quality 92.
    - CMYK becomes RGB; 16-bit greyscale PNG becomes 8-bit greyscale, scaled (Pillow already reads
      16-bit colour as 8-bit); a palette PNG stays a palette PNG with its transparency.
    - Refused as by image_open (GIF, animated WebP or PNG, bombs, broken files), and when the
      re-encoded file would exceed the byte cap (a heavily compressed JPEG grows at quality 92).
    """
    with image_open(data=data) as (image, _):
        fmt = _format(image)
        source_info, source_mode = dict(image.info), image.mode
        try:
            pixels = _plain_pixels(image)
        except Exception as exc:  # an EXIF block Pillow cannot parse
            raise _refusal("unreadable") from exc
        params = _encoder_params(source_info, source_mode, pixels, fmt)
        # Savers fall back on the image's own info for some metadata (a JPEG comment, say).
        pixels.info = {}
        buffer = io.BytesIO()
        pixels.save(buffer, fmt, **params)
    stored = buffer.getvalue()
    if len(stored) > settings.UPLOAD_MAX_BYTES:
        raise _refusal("bytes")
    return stored, _info(fmt, pixels.size, len(stored))
