"""Real images made with Pillow for the tests."""

from __future__ import annotations

import io
import struct
import zlib
from typing import Any

from PIL import ExifTags, Image, ImageDraw

RED, BLUE = (255, 0, 0), (0, 0, 255)


def product_photo(*, size: tuple[int, int] = (320, 240), fmt: str = "PNG", background: str = "#d8d8d8") -> bytes:
    """A red 'bottle' on a plain studio background."""
    image = Image.new("RGB", size, background)
    draw = ImageDraw.Draw(image)
    w, h = size
    draw.ellipse((w * 0.35, h * 0.2, w * 0.65, h * 0.85), fill="#b01c2e")
    buffer = io.BytesIO()
    image.save(buffer, fmt)
    return buffer.getvalue()


def encode(image: Image.Image, fmt: str, **params: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **params)
    return buffer.getvalue()


def two_tone(size: tuple[int, int] = (40, 20)) -> Image.Image:
    """Left half red, right half blue: which way up it is shows after a rotation."""
    image = Image.new("RGB", size, RED)
    image.paste(BLUE, (size[0] // 2, 0, size[0], size[1]))
    return image


def camera_exif(*, orientation: int = 6) -> Image.Exif:
    """What a phone writes: an orientation and where the photo was taken."""
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = orientation
    exif[ExifTags.Base.Make] = "TestCam"
    exif[ExifTags.IFD.GPSInfo] = {
        ExifTags.GPS.GPSLatitudeRef: "N",
        ExifTags.GPS.GPSLatitude: (31.0, 13.0, 44.5),
        ExifTags.GPS.GPSLongitudeRef: "E",
        ExifTags.GPS.GPSLongitude: (121.0, 28.0, 10.25),
    }
    return exif


XMP_WITH_GPS = (
    b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
    b'<rdf:Description xmlns:exif="http://ns.adobe.com/exif/1.0/" exif:GPSLatitude="31,13.74N"/>'
    b"</rdf:RDF></x:xmpmeta>"
)


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_header_bomb(width: int, height: int) -> bytes:
    """A valid 1-bit PNG of `width` x `height` black pixels, built row block by row block so the
    test never holds the decoded image: a few hundred kilobytes that would decode to gigabytes."""
    row = b"\x00" * (1 + (width + 7) // 8)
    block_rows = 256
    packer = zlib.compressobj(9)
    compressed = bytearray()
    for start in range(0, height, block_rows):
        compressed += packer.compress(row * min(block_rows, height - start))
    compressed += packer.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return PNG_SIGNATURE + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", bytes(compressed)) + png_chunk(b"IEND", b"")


def jpeg_with_size(width: int, height: int) -> bytes:
    """A small real JPEG whose frame header claims another size (a header bomb)."""
    data = bytearray(encode(Image.new("RGB", (16, 16), RED), "JPEG"))
    start = data.index(b"\xff\xc0")
    struct.pack_into(">HH", data, start + 5, height, width)
    return bytes(data)


def pixel(image: Image.Image, xy: tuple[int, int]) -> tuple[int, ...]:
    value = image.getpixel(xy)
    assert isinstance(value, tuple), value
    return value
