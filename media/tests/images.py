"""Real images made with Pillow for the tests."""

from __future__ import annotations

import io

from PIL import Image, ImageDraw


def product_photo(*, size: tuple[int, int] = (320, 240), fmt: str = "PNG", background: str = "#d8d8d8") -> bytes:
    """A red 'bottle' on a plain studio background."""
    image = Image.new("RGB", size, background)
    draw = ImageDraw.Draw(image)
    w, h = size
    draw.ellipse((w * 0.35, h * 0.2, w * 0.65, h * 0.85), fill="#b01c2e")
    buffer = io.BytesIO()
    image.save(buffer, fmt)
    return buffer.getvalue()
