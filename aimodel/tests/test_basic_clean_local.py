"""The offline basic_clean engine against synthetic studio photos whose true subject mask is known."""

from __future__ import annotations

import io
import time
from collections.abc import Callable

import numpy as np
import numpy.typing as npt
import pytest
from PIL import Image, ImageDraw, ImageFilter

from aimodel import basic_clean_local as engine
from aimodel.basic_clean_local import basic_clean_local
from aimodel.types import ImageOutput

WIDTH, HEIGHT = 640, 480
SUPERSAMPLE = 4

Mask = npt.NDArray[np.bool_]
Pixels = npt.NDArray[np.float32]
Colour = tuple[int, int, int]


ShapeDrawer = Callable[[ImageDraw.ImageDraw, float], None]


def _draw_mask(size: tuple[int, int], draw_shape: ShapeDrawer) -> Image.Image:
    """Antialiased 8-bit coverage of a shape given in output pixel coordinates."""
    large = Image.new("L", (size[0] * SUPERSAMPLE, size[1] * SUPERSAMPLE), 0)
    draw_shape(ImageDraw.Draw(large), SUPERSAMPLE)
    return large.resize(size, Image.Resampling.BOX)


def _bottle(draw: ImageDraw.ImageDraw, s: float) -> None:
    draw.ellipse((250 * s, 170 * s, 390 * s, 420 * s), fill=255)
    draw.rounded_rectangle((295 * s, 90 * s, 345 * s, 200 * s), radius=12 * s, fill=255)


def _box(draw: ImageDraw.ImageDraw, s: float) -> None:
    draw.rounded_rectangle((190 * s, 110 * s, 450 * s, 390 * s), radius=28 * s, fill=255)


def _shoe_touching_bottom_edge(draw: ImageDraw.ImageDraw, s: float) -> None:
    outline = [(120, 480), (110, 400), (150, 330), (250, 300), (300, 220), (380, 200), (420, 260), (540, 330)]
    outline += [(560, 400), (550, 480)]
    draw.polygon([(x * s, y * s) for x, y in outline], fill=255)


def _bag_with_handle(draw: ImageDraw.ImageDraw, s: float) -> None:
    draw.ellipse((230 * s, 70 * s, 410 * s, 300 * s), fill=255)
    draw.ellipse((262 * s, 102 * s, 378 * s, 268 * s), fill=0)
    draw.rounded_rectangle((180 * s, 220 * s, 460 * s, 420 * s), radius=20 * s, fill=255)


SHAPES: dict[str, ShapeDrawer] = {
    "bottle": _bottle,
    "box": _box,
    "shoe": _shoe_touching_bottom_edge,
    "bag": _bag_with_handle,
}


def _noise(rng: np.random.Generator, sigma: float) -> Pixels:
    return rng.normal(0, sigma, (HEIGHT, WIDTH, 3)).astype(np.float32)


def _white(rng: np.random.Generator) -> Pixels:
    return np.full((HEIGHT, WIDTH, 3), 255, dtype=np.float32)


def _light_grey_noisy(rng: np.random.Generator) -> Pixels:
    return np.float32(215) + _noise(rng, 6)


def _vertical_gradient(rng: np.random.Generator) -> Pixels:
    top, bottom = np.array([238, 240, 245], np.float32), np.array([170, 175, 185], np.float32)
    weight = np.linspace(0, 1, HEIGHT, dtype=np.float32)[:, None, None]
    return np.broadcast_to(top + (bottom - top) * weight, (HEIGHT, WIDTH, 3)).copy()


def _saturated_blue(rng: np.random.Generator) -> Pixels:
    return np.array([25, 95, 210], dtype=np.float32) + _noise(rng, 3)


def _dark(rng: np.random.Generator) -> Pixels:
    return np.array([28, 28, 33], dtype=np.float32) + _noise(rng, 3)


# Each background comes with a product colour a photographer would pick to stand out on it.
BACKGROUNDS: dict[str, tuple[Callable[[np.random.Generator], Pixels], Colour]] = {
    "white": (_white, (40, 70, 150)),
    "light_grey_noisy": (_light_grey_noisy, (170, 40, 45)),
    "vertical_gradient": (_vertical_gradient, (120, 75, 40)),
    "saturated_blue": (_saturated_blue, (235, 225, 200)),
    "dark": (_dark, (200, 190, 170)),
}


def _product_pixels(colour: Colour) -> Pixels:
    """A lit, textured product surface: side shading, a soft highlight and a printed band."""
    xs = np.linspace(-1, 1, WIDTH, dtype=np.float32)[None, :, None]
    ys = np.linspace(-1, 1, HEIGHT, dtype=np.float32)[:, None, None]
    shading = 1.0 - 0.25 * xs**2 - 0.1 * ys
    surface = np.array(colour, dtype=np.float32) * shading
    highlight = np.exp(-(((xs + 0.15) / 0.05) ** 2)) * 0.35
    surface = surface + (255 - surface) * highlight
    band = np.abs(ys - 0.1) < 0.06
    textured: Pixels = np.where(band, surface * 0.6, surface).astype(np.float32)
    return textured


def _soft_shadow(mask: Image.Image, strength: float) -> Pixels:
    """A blurred contact shadow below the subject, as a multiplier of the background."""
    bbox = mask.getbbox()
    assert bbox is not None
    left, _, right, bottom = bbox
    shadow = Image.new("L", mask.size, 0)
    ImageDraw.Draw(shadow).ellipse((left - 10, bottom - 25, right + 30, bottom + 15), fill=255)
    blurred = np.asarray(shadow.filter(ImageFilter.GaussianBlur(14)), dtype=np.float32) / 255
    multiplier: Pixels = (1.0 - strength * blurred)[..., None].astype(np.float32)
    return multiplier


def _studio_photo(shape: str, background: str, *, shadow_strength: float = 0.4) -> tuple[bytes, Mask]:
    rng = np.random.default_rng(0)
    make_background, colour = BACKGROUNDS[background]
    coverage_image = _draw_mask((WIDTH, HEIGHT), SHAPES[shape])
    coverage = np.asarray(coverage_image, dtype=np.float32)[..., None] / 255
    scene = make_background(rng) * _soft_shadow(coverage_image, shadow_strength)
    scene = scene * (1 - coverage) + _product_pixels(colour) * coverage
    photo = Image.fromarray(np.clip(scene, 0, 255).astype(np.uint8), "RGB")
    buffer = io.BytesIO()
    photo.save(buffer, format="JPEG", quality=85)
    return buffer.getvalue(), np.asarray(coverage_image) > 127


def _open(output: ImageOutput) -> Image.Image:
    return Image.open(io.BytesIO(output.data))


def _iou(alpha: Image.Image, truth: Mask) -> float:
    predicted = np.asarray(alpha) > 127
    return float((predicted & truth).sum() / (predicted | truth).sum())


def _outputs_by_name(data: bytes) -> dict[str, Image.Image]:
    return {output.name: _open(output) for output in basic_clean_local(image=data)}


@pytest.mark.parametrize("background", BACKGROUNDS)
@pytest.mark.parametrize("shape", SHAPES)
def test_cutout_matches_the_true_subject(shape: str, background: str) -> None:
    data, truth = _studio_photo(shape, background)

    cutout = _outputs_by_name(data)["cutout"]

    assert cutout.size == (WIDTH, HEIGHT)
    assert _iou(cutout.getchannel("A"), truth) >= 0.9


@pytest.mark.parametrize(
    ("shape", "background"),
    [
        ("bottle", "white"),
        ("bottle", "vertical_gradient"),
        ("box", "vertical_gradient"),
        ("bag", "vertical_gradient"),
    ],
)
def test_a_dark_contact_shadow_is_left_out_of_the_cutout(shape: str, background: str) -> None:
    data, truth = _studio_photo(shape, background, shadow_strength=0.55)
    truth_image = Image.fromarray(truth)
    darkened = _soft_shadow(truth_image, 0.55)[..., 0] < 0.75
    shadow_only = darkened & ~np.asarray(truth_image.filter(ImageFilter.MaxFilter(7)))

    alpha = np.asarray(_outputs_by_name(data)["cutout"].getchannel("A"))

    assert shadow_only.sum() > 1000
    assert (alpha[shadow_only] > 127).mean() < 0.01


def test_the_opening_of_a_bag_handle_stays_transparent() -> None:
    data, _ = _studio_photo("bag", "light_grey_noisy")

    alpha = _outputs_by_name(data)["cutout"].getchannel("A")

    assert alpha.getpixel((320, 185)) == 0
    assert alpha.getpixel((320, 350)) == 255


def test_three_outputs_in_order_with_their_formats() -> None:
    data, _ = _studio_photo("bottle", "white")

    outputs = basic_clean_local(image=data)

    assert [(o.name, o.content_type, o.ext) for o in outputs] == [
        ("cutout", "image/png", "png"),
        ("white", "image/jpeg", "jpg"),
        ("enhanced", "image/jpeg", "jpg"),
    ]
    assert [(_open(o).format, _open(o).mode) for o in outputs] == [
        ("PNG", "RGBA"),
        ("JPEG", "RGB"),
        ("JPEG", "RGB"),
    ]


def test_white_output_has_pure_white_background_and_keeps_the_subject() -> None:
    data, truth = _studio_photo("box", "saturated_blue")

    white = np.asarray(_outputs_by_name(data)["white"], dtype=np.int16)

    for corner in (white[0, 0], white[0, -1], white[-1, 0], white[-1, -1]):
        assert corner.tolist() == [255, 255, 255]
    far_from_subject = ~np.asarray(Image.fromarray(truth).filter(ImageFilter.MaxFilter(15)))
    assert (white[far_from_subject] >= 250).all()
    subject_colour = white[truth].mean(axis=0)
    assert np.abs(subject_colour - [235 * 0.85, 225 * 0.85, 200 * 0.85]).max() < 35


def test_no_fringe_of_a_coloured_background_shows_around_the_subject_on_white() -> None:
    data, truth = _studio_photo("bag", "saturated_blue")
    truth_image = Image.fromarray(truth)
    outline = np.asarray(truth_image.filter(ImageFilter.MaxFilter(5))) & ~np.asarray(
        truth_image.filter(ImageFilter.MinFilter(5))
    )

    white = np.asarray(_outputs_by_name(data)["white"], dtype=np.float32)

    blue_cast = white[..., 2] - (white[..., 0] + white[..., 1]) / 2
    assert np.percentile(blue_cast[outline], 90) < 5


def test_enhanced_output_is_a_white_square_with_the_subject_centred() -> None:
    data, _ = _studio_photo("bottle", "light_grey_noisy")

    enhanced = _outputs_by_name(data)["enhanced"]

    assert enhanced.width == enhanced.height
    pixels = np.asarray(enhanced, dtype=np.int16)
    assert pixels[0, 0].tolist() == [255, 255, 255]
    rows, cols = np.nonzero((pixels < 235).any(axis=2))
    side = enhanced.width
    assert abs((rows.min() + rows.max()) / 2 - side / 2) < side * 0.02
    assert abs((cols.min() + cols.max()) / 2 - side / 2) < side * 0.02
    assert 0.8 * side <= rows.max() - rows.min() <= 0.9 * side


def test_exif_orientation_is_honoured() -> None:
    data, truth = _studio_photo("shoe", "white")
    photo = Image.open(io.BytesIO(data))
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways, to be shown rotated 90° clockwise
    rotated_on_disk = photo.transpose(Image.Transpose.ROTATE_90)
    buffer = io.BytesIO()
    rotated_on_disk.save(buffer, format="JPEG", quality=90, exif=exif)

    cutout = _outputs_by_name(buffer.getvalue())["cutout"]

    assert cutout.size == (WIDTH, HEIGHT)
    assert _iou(cutout.getchannel("A"), truth) >= 0.9


def _reencoded(data: bytes, convert: Callable[[Image.Image], Image.Image], image_format: str) -> bytes:
    buffer = io.BytesIO()
    convert(Image.open(io.BytesIO(data))).save(buffer, format=image_format)
    return buffer.getvalue()


def _transparent_background(photo: Image.Image, truth: Mask) -> Image.Image:
    rgba = photo.convert("RGBA")
    rgba.putalpha(Image.fromarray(truth.astype(np.uint8) * 255))
    return rgba


@pytest.mark.parametrize(
    ("mode_name", "image_format"),
    [("L", "PNG"), ("I;16", "PNG"), ("P", "PNG"), ("CMYK", "JPEG"), ("RGBA", "PNG"), ("RGB", "WEBP")],
)
def test_input_modes_and_formats(mode_name: str, image_format: str) -> None:
    data, truth = _studio_photo("box", "light_grey_noisy")
    converters: dict[str, Callable[[Image.Image], Image.Image]] = {
        "L": lambda photo: photo.convert("L"),
        "I;16": lambda photo: Image.fromarray(np.asarray(photo.convert("L"), dtype=np.uint16) * 257),
        "P": lambda photo: photo.convert("P", palette=Image.Palette.ADAPTIVE),
        "CMYK": lambda photo: photo.convert("CMYK"),
        "RGBA": lambda photo: _transparent_background(photo, truth),
        "RGB": lambda photo: photo,
    }
    encoded = _reencoded(data, converters[mode_name], image_format)
    assert Image.open(io.BytesIO(encoded)).mode == mode_name

    cutout = _outputs_by_name(encoded)["cutout"]

    assert cutout.mode == "RGBA"
    assert _iou(cutout.getchannel("A"), truth) >= 0.9


def test_a_plain_picture_without_a_subject_is_kept_whole() -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (300, 200), (200, 200, 200)).save(buffer, format="PNG")

    cutout = _outputs_by_name(buffer.getvalue())["cutout"]

    assert cutout.getchannel("A").getextrema() == (255, 255)


def test_a_24_megapixel_photo_is_processed_quickly_at_full_resolution() -> None:
    data, truth = _studio_photo("bag", "vertical_gradient")
    large_size = (6000, 4000)
    large = Image.open(io.BytesIO(data)).resize(large_size, Image.Resampling.BILINEAR)
    buffer = io.BytesIO()
    large.save(buffer, format="JPEG", quality=85)
    large_truth = np.asarray(Image.fromarray(truth).resize(large_size, Image.Resampling.NEAREST))

    started = time.perf_counter()
    outputs = _outputs_by_name(buffer.getvalue())
    elapsed = time.perf_counter() - started

    assert outputs["cutout"].size == outputs["white"].size == large_size
    assert _iou(outputs["cutout"].getchannel("A"), large_truth) >= 0.9
    assert max(outputs["enhanced"].size) <= 2048
    assert elapsed < 20


@pytest.mark.parametrize(("large_size", "work_size"), [((4000, 3000), (1024, 768)), ((1800, 2400), (768, 1024))])
def test_the_mask_is_computed_on_a_working_copy_whatever_the_photo_size(
    monkeypatch: pytest.MonkeyPatch, large_size: tuple[int, int], work_size: tuple[int, int]
) -> None:
    data, truth = _studio_photo("bottle", "light_grey_noisy")
    large = Image.open(io.BytesIO(data)).resize(large_size, Image.Resampling.BILINEAR)
    buffer = io.BytesIO()
    large.save(buffer, format="JPEG", quality=90)
    analysed: list[tuple[int, int]] = []
    subject_mask = engine._subject_mask

    def recording_subject_mask(work: Image.Image) -> tuple[Image.Image, npt.NDArray[np.float32]]:
        analysed.append(work.size)
        return subject_mask(work)

    monkeypatch.setattr(engine, "_subject_mask", recording_subject_mask)

    outputs = _outputs_by_name(buffer.getvalue())

    assert analysed == [work_size]
    assert max(work_size) == engine.MASK_WORK_SIDE
    assert outputs["cutout"].size == outputs["white"].size == large_size
    large_truth = np.asarray(Image.fromarray(truth).resize(large_size, Image.Resampling.NEAREST))
    assert _iou(outputs["cutout"].getchannel("A"), large_truth) >= 0.9


@pytest.mark.parametrize(("width", "height", "density"), [(1, 1, 0.5), (7, 3, 0.5), (3, 7, 0.7), (97, 64, 0.6)])
def test_the_mask_is_cleaned_exactly_as_with_pillows_rank_filters(width: int, height: int, density: float) -> None:
    mask = np.random.default_rng(width * height).random((height, width)) < density
    image = Image.fromarray(mask.astype(np.uint8) * 255, "L")
    opened = image.filter(ImageFilter.MinFilter(3)).filter(ImageFilter.MaxFilter(3))
    closed = opened.filter(ImageFilter.MaxFilter(5)).filter(ImageFilter.MinFilter(5))

    assert np.array_equal(engine._morphology_clean(mask), np.asarray(closed) > 127)


@pytest.mark.parametrize(
    "data",
    [b"", b"definitely not an image", _studio_photo("box", "white")[0][:400]],
    ids=["empty", "text", "truncated_jpeg"],
)
def test_undecodable_input_is_a_value_error(data: bytes) -> None:
    with pytest.raises(ValueError, match="cannot decode"):
        basic_clean_local(image=data)
