"""The pictures behind the simulator's result URLs, and the decode check its LoadImage node makes.

Every finished task serves `output_count` real PNGs derived from its uploaded input (twelve distinct
transforms, each tinted and framed per task and index), so a client that copies results gets files it
can open, tell apart and check.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable

from PIL import Image, ImageChops, ImageDraw, ImageOps

_RESULT_MAX_SIDE = 512


def load_error(data: bytes | None) -> str:
    """Why ComfyUI's LoadImage would fail on `data` ("" when it decodes or there is no upload)."""
    if data is None:
        return ""
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.verify()
    except Exception as exc:  # Pillow raises many unrelated types for undecodable input.
        return f"cannot identify image file: {type(exc).__name__}"
    return ""


def derived_png(source: bytes | None, task_id: str, index: int) -> bytes:
    """Result `index` (1-based): one of twelve distinct transforms of the input, as a real PNG."""
    if source is None:
        base = Image.linear_gradient("L").resize((384, 512)).convert("RGB")
    else:
        with Image.open(io.BytesIO(source)) as opened:
            base = ImageOps.exif_transpose(opened).convert("RGB")
    base.thumbnail((_RESULT_MAX_SIDE, _RESULT_MAX_SIDE))
    width, height = base.size
    transforms: list[Callable[[Image.Image], Image.Image]] = [
        lambda im: im,
        ImageOps.mirror,
        ImageOps.flip,
        lambda im: im.rotate(90, expand=True),
        lambda im: im.rotate(180),
        lambda im: im.rotate(270, expand=True),
        lambda im: im.crop((width // 8, height // 8, width - width // 8, height - height // 8)),
        lambda im: im.crop((0, 0, max(1, width * 3 // 4), max(1, height * 3 // 4))),
        lambda im: im.crop((width // 4, height // 4, width, height)),
        lambda im: ImageOps.grayscale(im).convert("RGB"),
        ImageOps.invert,
        lambda im: ImageOps.posterize(im, 2),
    ]
    shot = transforms[(index - 1) % len(transforms)](base)
    # A per-shot tint and frame keep every result different even for a flat, symmetric input.
    seed = hashlib.sha256(f"{task_id}:{index}".encode()).digest()
    tint = Image.new("RGB", shot.size, (seed[0], seed[1], seed[2]))
    shot = ImageChops.blend(shot, tint, 0.18)
    ImageDraw.Draw(shot).rectangle((0, 0, shot.width - 1, shot.height - 1), outline=(seed[3], 40, 200), width=index)
    output = io.BytesIO()
    shot.save(output, format="PNG")
    return output.getvalue()
