"""Writes a product photo for trying the API by hand (README's curl walk-through): a red dress on a
light studio backdrop, 1200 x 1600 JPEG. Usage: python scripts/sample_photo.py docs/sample.jpg"""

from __future__ import annotations

import sys
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter


def sample_photo(path: Path) -> None:
    width, height = 1200, 1600
    image = Image.new("RGB", (width, height), "#e9e6e1")
    draw = ImageDraw.Draw(image)
    # A soft floor shadow, then the dress: straps, bodice and a flared skirt.
    draw.ellipse((330, 1380, 870, 1470), fill="#d2cec8")
    image = image.filter(ImageFilter.GaussianBlur(6))
    draw = ImageDraw.Draw(image)
    red, dark = "#b3202f", "#8e1825"
    draw.line((520, 260, 545, 420), fill=dark, width=14)
    draw.line((680, 260, 655, 420), fill=dark, width=14)
    draw.polygon([(510, 420), (690, 420), (670, 700), (530, 700)], fill=red)
    draw.polygon([(530, 700), (670, 700), (900, 1400), (300, 1400)], fill=red)
    draw.rectangle((525, 690, 675, 715), fill=dark)
    for x in range(360, 860, 70):
        draw.line((600, 720, x, 1395), fill=dark, width=3)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, "JPEG", quality=90)


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/sample.jpg")
    sample_photo(target)
    print(f"wrote {target}")
