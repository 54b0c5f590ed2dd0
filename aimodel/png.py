"""PNG encoding of an RGBA image that arrives a band of rows at a time, deflated on several threads.

Every row uses the "Up" filter (its difference to the row above), which numpy computes for a whole
band at once; Pillow's encoder instead tries every filter on every row, which costs more than the
deflating. On studio cut-outs, whose transparent pixels are one flat colour, Up alone also compresses
a little better than Pillow's adaptive choice.

Each band is deflated on its own by a pool of threads (`zlib` lets go of the GIL while it
compresses), as a raw deflate stream ended with a sync flush so that the streams join into one
(the last is ended with a final block instead). One zlib stream is the 2-byte header, those
streams in order and the Adler-32 of all the filtered rows, which is combined from the bands'
own. Each band's stream goes into its own IDAT chunk: a decoder reads the chunks' data as one
stream. A band's stream does not look back into the band before it: handing over those 32 KiB
as a preset dictionary gained nothing on the bench photo.

Memory: at most `MAX_PENDING_BANDS` bands are waiting or being deflated at once, each with its
filtered copy, so the encoder holds a few bands beyond the compressed output, whatever the image
height.
"""

from __future__ import annotations

import struct
import zlib
from collections import deque
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np
import numpy.typing as npt

# Making a band of the cut-out costs about as much as deflating it: with more threads they would
# wait for bands.
DEFLATE_THREADS = 2
MAX_PENDING_BANDS = 2 * DEFLATE_THREADS
# The noisy photo part of a cut-out gains little from more search: level 2 is 5 % smaller and
# 10 to 20 % slower.
DEFLATE_LEVEL = 1

SIGNATURE = b"\x89PNG\r\n\x1a\n"
RGBA_COLOUR_TYPE = 6
UP_FILTER = 2
# Deflate with a 32 KiB window, "fastest" flag; the header's check bits make it a multiple of 31.
ZLIB_HEADER = b"\x78\x01"
ADLER_MODULUS = 65521

UintArray = npt.NDArray[np.uint8]


def png_encode_rgba(*, width: int, height: int, bands: Iterable[UintArray]) -> bytes:
    """The PNG file of a `width`×`height` RGBA image given as consecutive bands of rows, top first.

    Each band is a uint8 array of shape (rows, width, 4); the bands' rows must add up to `height`.
    Bands are read on other threads: a band must not change once it is given.
    """
    if width < 1 or height < 1:
        raise ValueError(f"png: an image needs at least one pixel, not {width}×{height}")
    pieces = [SIGNATURE, *_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, RGBA_COLOUR_TYPE, 0, 0, 0))]
    adler, filtered_length = 1, 0
    rows_seen = 0
    above: UintArray = np.zeros(width * 4, dtype=np.uint8)
    pending: deque[Future[tuple[bytes, int, int]]] = deque()

    def collect_oldest() -> None:
        nonlocal adler, filtered_length
        deflated, band_adler, band_length = pending.popleft().result()
        adler = _adler32_joined(adler, band_adler, band_length)
        header = ZLIB_HEADER if filtered_length == 0 else b""
        filtered_length += band_length
        trailer = struct.pack(">I", adler) if filtered_length == height * (1 + width * 4) else b""
        pieces.extend(_chunk(b"IDAT", header, deflated, trailer))

    with ThreadPoolExecutor(max_workers=DEFLATE_THREADS, thread_name_prefix="png-deflate") as pool:
        for band in bands:
            if band.dtype != np.uint8 or band.ndim != 3 or band.shape[1:] != (width, 4) or not len(band):
                raise ValueError(f"png: a band must be uint8 rows of {width}×4 bytes, not {band.dtype} {band.shape}")
            rows = band.reshape(len(band), width * 4)
            rows_seen += len(rows)
            if rows_seen > height:
                raise ValueError(f"png: more than {height} rows given")
            if len(pending) == MAX_PENDING_BANDS:
                collect_oldest()
            pending.append(pool.submit(_filter_and_deflate, rows, above, last=rows_seen == height))
            # A copy: a view would keep the whole band alive once it is deflated.
            above = rows[-1].copy()
        while pending:
            collect_oldest()
    if rows_seen != height:
        raise ValueError(f"png: {rows_seen} rows given for an image of {height}")
    pieces.extend(_chunk(b"IEND"))
    # The chunks were kept in pieces so that the compressed data is copied here only.
    return b"".join(pieces)


def _filter_and_deflate(rows: UintArray, above: UintArray, *, last: bool) -> tuple[bytes, int, int]:
    """One band's rows, Up-filtered and deflated, with the Adler-32 and length of the filtered bytes."""
    filtered = np.empty((len(rows), 1 + rows.shape[1]), dtype=np.uint8)
    filtered[:, 0] = UP_FILTER
    # uint8 arithmetic wraps around, which is the filter's modulo 256.
    np.subtract(rows[0], above, out=filtered[0, 1:])
    np.subtract(rows[1:], rows[:-1], out=filtered[1:, 1:])
    compressor = zlib.compressobj(DEFLATE_LEVEL, zlib.DEFLATED, -zlib.MAX_WBITS)
    deflated = compressor.compress(filtered.data) + compressor.flush(zlib.Z_FINISH if last else zlib.Z_SYNC_FLUSH)
    return deflated, zlib.adler32(filtered.data), filtered.nbytes


def _adler32_joined(first: int, second: int, second_length: int) -> int:
    """The Adler-32 of two byte strings one after the other, from the checksum of each.

    Adler-32 keeps a = 1 + the sum of the bytes and b = the sum of a after each byte (both modulo
    65521). Behind `first`, the bytes of `second` add their sum to a, and each of its b terms grows
    by the a that `first` ended with, less the 1 that `second`'s own a started from.
    """
    first_a, first_b = first & 0xFFFF, first >> 16
    second_a, second_b = second & 0xFFFF, second >> 16
    a = (first_a + second_a - 1) % ADLER_MODULUS
    b = (first_b + second_b + second_length * (first_a - 1)) % ADLER_MODULUS
    return (b << 16) | a


def _chunk(kind: bytes, *parts: bytes) -> list[bytes]:
    """The pieces of one chunk whose data is `parts` joined, left apart so that they are copied once."""
    crc = zlib.crc32(kind)
    for part in parts:
        crc = zlib.crc32(part, crc)
    return [struct.pack(">I", sum(map(len, parts))) + kind, *parts, struct.pack(">I", crc)]
