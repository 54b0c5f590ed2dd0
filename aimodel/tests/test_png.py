"""The band-wise PNG encoder: files any decoder reads, with exactly the pixels given."""

from __future__ import annotations

import io
import struct
import weakref
import zlib
from collections.abc import Iterator

import numpy as np
import numpy.typing as npt
import pytest
from PIL import Image

from aimodel import png
from aimodel.png import png_encode_rgba

Pixels = npt.NDArray[np.uint8]


def _random_rgba(width: int, height: int, *, seed: int = 0) -> Pixels:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 4), dtype=np.uint8)


def _photo_like_rgba(width: int, height: int) -> Pixels:
    """Smooth colours with sensor noise and a transparent white surround, like a cut-out."""
    rng = np.random.default_rng(1)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    base = np.stack([120 + 60 * np.sin(xs / 37), 90 + 40 * np.cos(ys / 23), 150 + 0 * xs], axis=-1)
    pixels = np.clip(base + rng.normal(0, 3, base.shape), 0, 255).astype(np.uint8)
    inside = ((xs - width / 2) / (width / 3)) ** 2 + ((ys - height / 2) / (height / 3)) ** 2 < 1
    rgba = np.empty((height, width, 4), dtype=np.uint8)
    rgba[..., :3] = np.where(inside[..., None], pixels, 255)
    rgba[..., 3] = np.where(inside, 255, 0)
    return rgba


def _bands(pixels: Pixels, heights: list[int]) -> Iterator[Pixels]:
    top = 0
    for height in heights:
        yield pixels[top : top + height]
        top += height


def _even_bands(pixels: Pixels, rows: int) -> Iterator[Pixels]:
    for top in range(0, len(pixels), rows):
        yield pixels[top : top + rows]


def _encode(pixels: Pixels, rows: int = 64) -> bytes:
    height, width = pixels.shape[:2]
    return png_encode_rgba(width=width, height=height, bands=_even_bands(pixels, rows))


def _decoded(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def _chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    """The (type, data) chunks of a PNG file, each checked against its CRC."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    chunks, offset = [], 8
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        kind, body = data[offset + 4 : offset + 8], data[offset + 8 : offset + 8 + length]
        (crc,) = struct.unpack(">I", data[offset + 8 + length : offset + 12 + length])
        assert crc == zlib.crc32(kind + body), kind
        chunks.append((kind, body))
        offset += 12 + length
    return chunks


@pytest.mark.parametrize(("width", "height"), [(1, 1), (7, 3), (3, 7), (1, 200), (200, 1), (129, 65)])
def test_pillow_reads_back_exactly_the_pixels_given(width: int, height: int) -> None:
    pixels = _random_rgba(width, height)

    image = _decoded(_encode(pixels, rows=2))

    assert (image.format, image.mode, image.size) == ("PNG", "RGBA", (width, height))
    assert np.array_equal(np.asarray(image), pixels)


def test_a_large_image_in_many_bands_is_one_valid_zlib_stream_of_up_filtered_rows() -> None:
    width, height = 1531, 1000
    pixels = _photo_like_rgba(width, height)

    data = _encode(pixels, rows=64)

    chunks = _chunks(data)
    kinds = [kind for kind, _ in chunks]
    assert kinds[0] == b"IHDR" and kinds[-1] == b"IEND"
    assert set(kinds[1:-1]) == {b"IDAT"} and len(kinds) - 2 == -(-height // 64)
    assert chunks[0][1] == struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    # zlib.decompress checks the stream's header, its end and the Adler-32 of all the rows.
    raw = zlib.decompress(b"".join(body for kind, body in chunks if kind == b"IDAT"))
    rows = np.frombuffer(raw, dtype=np.uint8).reshape(height, 1 + width * 4)
    assert (rows[:, 0] == 2).all()
    assert np.array_equal(np.cumsum(rows[:, 1:], axis=0, dtype=np.uint8), pixels.reshape(height, width * 4))
    assert np.array_equal(np.asarray(_decoded(data)), pixels)


def test_the_pixels_do_not_depend_on_how_the_rows_are_banded() -> None:
    pixels = _random_rgba(31, 40, seed=3)

    data = png_encode_rgba(width=31, height=40, bands=_bands(pixels, [1, 1, 13, 2, 20, 3]))

    assert np.array_equal(np.asarray(_decoded(data)), pixels)
    assert zlib.decompress(b"".join(body for kind, body in _chunks(data) if kind == b"IDAT"))


def test_a_cut_out_compresses_about_as_well_as_with_pillow() -> None:
    pixels = _photo_like_rgba(1200, 800)
    pillow = io.BytesIO()
    Image.fromarray(pixels, "RGBA").save(pillow, format="PNG", compress_level=1)

    ours = _encode(pixels)

    assert len(ours) <= 1.1 * len(pillow.getvalue())


def test_only_a_few_bands_are_held_at_once() -> None:
    width, rows, count = 256, 16, 40
    alive: list[weakref.ref[Pixels]] = []
    most_alive = 0

    def bands() -> Iterator[Pixels]:
        nonlocal most_alive
        for index in range(count):
            band = _random_rgba(width, rows, seed=index)
            alive.append(weakref.ref(band))
            most_alive = max(most_alive, sum(ref() is not None for ref in alive))
            yield band
            del band

    data = png_encode_rgba(width=width, height=rows * count, bands=bands())

    assert _decoded(data).size == (width, rows * count)
    # The bands waiting or being deflated, and the one being handed over.
    assert most_alive <= png.MAX_PENDING_BANDS + 1


@pytest.mark.parametrize(
    ("bands", "message"),
    [
        ([np.zeros((2, 5, 4), dtype=np.uint16)], "uint8 rows of 5×4"),
        ([np.zeros((2, 5, 3), dtype=np.uint8)], "uint8 rows of 5×4"),
        ([np.zeros((2, 6, 4), dtype=np.uint8)], "uint8 rows of 5×4"),
        ([np.zeros((10, 4), dtype=np.uint8)], "uint8 rows of 5×4"),
        ([np.zeros((0, 5, 4), dtype=np.uint8)], "uint8 rows of 5×4"),
        ([np.zeros((2, 5, 4), dtype=np.uint8)] * 2, "more than 3 rows"),
        ([np.zeros((2, 5, 4), dtype=np.uint8)], "2 rows given for an image of 3"),
        ([], "0 rows given for an image of 3"),
    ],
)
def test_bands_that_do_not_make_the_image_are_refused(bands: list[Pixels], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        png_encode_rgba(width=5, height=3, bands=iter(bands))


@pytest.mark.parametrize(("width", "height"), [(0, 3), (3, 0)])
def test_an_empty_image_is_refused(width: int, height: int) -> None:
    with pytest.raises(ValueError, match="at least one pixel"):
        png_encode_rgba(width=width, height=height, bands=iter([]))
