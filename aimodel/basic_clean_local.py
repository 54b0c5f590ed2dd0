"""Offline `basic_clean` engine: cut a product out of a plain studio background with Pillow and numpy.

Method. The subject mask is computed on a working copy whose longest side is at most
`MASK_WORK_SIDE` pixels:

1. The background is modelled from a strip of border pixels as a smooth (quadratic in x and y)
   colour field in CIE Lab, fitted by iteratively trimmed least squares, so gradients, vignettes
   and a product touching one edge do not spoil it.
2. Every pixel gets a distance to its local background colour that is shading-aware: a darker
   version of the background (a soft shadow) costs little, anything else costs its full Lab
   difference.
3. The distance map is thresholded with Otsu, never below a floor derived from the background's
   own noise; the binary mask is cleaned with an opening and a closing.
4. Connected components are labelled (run-length union-find, numpy only); the largest one and
   any other of comparable size are kept. Holes are filled unless they are large and really show
   background (the opening of a bag handle stays transparent).
5. The mask is feathered, upscaled to full resolution and used as alpha; the background colour
   is unmixed from the semi-transparent edge pixels so no fringe of it shows on white.

Outputs, in order: "cutout" (RGBA PNG, full resolution), "white" (the subject on #FFFFFF, full
resolution, JPEG quality 92: photographic content, about a tenth of the PNG size, and every
marketplace accepts it; flat white areas decode back to exactly 255), "enhanced" (autocontrast,
slight colour and unsharp mask applied to the subject only, centred on a white square with the
subject filling `SUBJECT_FILL` of the side, side at most `ENHANCED_SIDE_MAX`, JPEG).

Bounds. Mask work is O(`MASK_WORK_SIDE`²) whatever the input size: about 1 M pixels of float32
maps, under 100 MB. Full-resolution work is a handful of 8-bit Pillow images (RGB, its
edge-corrected copy, alpha, RGBA, the white composite), about 14 bytes per input pixel: a
40-megapixel photo (the upload limit) peaked at 590 MB resident and took 4.2 s on one core of
the development machine, a third of it in the PNG encoder. Nothing grows with image content
except the number of mask runs and holes, which the working-copy size bounds.
"""

from __future__ import annotations

import io

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageEnhance, ImageFilter, ImageOps, UnidentifiedImageError

from aimodel.types import ImageOutput

MASK_WORK_SIDE = 1024
ENHANCED_SIDE_MAX = 2048
SUBJECT_FILL = 0.85
MAX_CONTRAST_GAIN = 1.2
JPEG_QUALITY = 92

# Border strip used to learn the background, as a fraction of the shorter side.
BORDER_FRACTION = 0.03
# Cube-root lightness ratio down to which darkening is treated as a shadow (0.8 ≈ half the light)
# and the discount applied to it, so cast shadows stay out of the cut-out.
SHADOW_DEPTH = 0.2
SHADOW_WEIGHT = 0.35
# No threshold below this Lab distance: JPEG ringing and sensor noise live under it.
MIN_THRESHOLD = 8.0
# A second component survives when it is at least this share of the largest (a pair of shoes).
COMPONENT_KEEP_RATIO = 0.05
# A hole larger than this share of the subject that looks like background stays transparent.
OPEN_HOLE_RATIO = 0.002

FloatArray = npt.NDArray[np.float32]
BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.int64]


def basic_clean_local(*, image: bytes) -> list[ImageOutput]:
    """Return the "cutout", "white" and "enhanced" images of a product photo."""
    rgb = _decode_rgb(image)
    alpha, background_rgb = _subject_alpha(rgb)
    rgb = _without_background_spill(rgb, alpha, background_rgb)
    return [
        _encode_png("cutout", _cutout(rgb, alpha)),
        _encode_jpeg("white", _on_white(rgb, alpha)),
        _encode_jpeg("enhanced", _enhanced(rgb, alpha)),
    ]


def _decode_rgb(data: bytes) -> Image.Image:
    try:
        opened = Image.open(io.BytesIO(data))
        opened.load()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise ValueError(f"basic_clean: cannot decode the input image ({exc})") from exc
    oriented = ImageOps.exif_transpose(opened)
    if oriented.mode in ("I", "I;16", "I;16B", "I;16L"):
        # 16-bit greyscale PNG: Pillow would clip it to 8 bits instead of scaling it.
        wide = np.asarray(oriented, dtype=np.float32)
        oriented = Image.fromarray(np.clip(wide / 257.0, 0, 255).round().astype(np.uint8), "L")
    if oriented.has_transparency_data:
        # Transparent areas become white background, which the segmentation then removes.
        rgba = oriented.convert("RGBA")
        flattened = Image.new("RGB", rgba.size, (255, 255, 255))
        flattened.paste(rgba, mask=rgba.getchannel("A"))
        return flattened
    return oriented.convert("RGB")


def _subject_alpha(rgb: Image.Image) -> tuple[Image.Image, FloatArray]:
    """The feathered full-resolution alpha and the background's sRGB polynomial coefficients."""
    work = np.asarray(_working_copy(rgb).filter(ImageFilter.GaussianBlur(1)), dtype=np.float32)
    shade_space = _srgb_to_lab(work) + np.array([16.0, 0.0, 0.0], dtype=np.float32)
    background, background_rgb, noise = _fit_background(shade_space, work)
    distance = _shadow_tolerant_distance(shade_space, background)
    threshold = max(_otsu_threshold(distance), MIN_THRESHOLD, 4.0 * noise)
    mask = _morphology_clean(distance > threshold)
    mask = _keep_main_components(mask)
    mask = _fill_holes(mask, distance, open_hole_limit=max(4.0 * noise, MIN_THRESHOLD / 2))
    if not mask.any():
        # Nothing separates from the background: keep the whole photo rather than return nothing.
        return Image.new("L", rgb.size, 255), background_rgb
    soft = Image.fromarray(mask.astype(np.uint8) * 255, "L").filter(ImageFilter.GaussianBlur(0.8))
    return soft.resize(rgb.size, Image.Resampling.BILINEAR), background_rgb


def _working_copy(rgb: Image.Image) -> Image.Image:
    scale = MASK_WORK_SIDE / max(rgb.size)
    if scale >= 1:
        return rgb
    size = (max(1, round(rgb.width * scale)), max(1, round(rgb.height * scale)))
    return rgb.resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0)


def _srgb_to_lab(srgb: FloatArray) -> FloatArray:
    unit = srgb / 255.0
    linear = np.where(unit <= 0.04045, unit / 12.92, ((unit + 0.055) / 1.055) ** 2.4)
    to_xyz = np.array(
        [
            [0.4124564, 0.3575761, 0.1804375],
            [0.2126729, 0.7151522, 0.0721750],
            [0.0193339, 0.1191920, 0.9503041],
        ],
        dtype=np.float32,
    )
    d65_white = np.array([0.95047, 1.0, 1.08883], dtype=np.float32)
    xyz = (linear @ to_xyz.T) / d65_white
    epsilon, kappa = 216 / 24389, 24389 / 27
    f = np.where(xyz > epsilon, np.cbrt(xyz), (kappa * xyz + 16) / 116)
    lightness = 116 * f[..., 1] - 16
    green_red = 500 * (f[..., 0] - f[..., 1])
    blue_yellow = 200 * (f[..., 1] - f[..., 2])
    return np.stack([lightness, green_red, blue_yellow], axis=-1).astype(np.float32)


def _polynomial_terms(ys: FloatArray, xs: FloatArray) -> FloatArray:
    return np.stack([np.ones_like(xs), xs, ys, xs * xs, ys * ys, xs * ys], axis=-1)


def _fit_background(shade_space: FloatArray, srgb: FloatArray) -> tuple[FloatArray, FloatArray, float]:
    """Fit a smooth background colour field to the border.

    Returns the field in shade space, its polynomial coefficients in sRGB (for any resolution)
    and the noise level of the border around the fit.
    """
    height, width = shade_space.shape[:2]
    strip = max(1, round(BORDER_FRACTION * min(height, width)))
    border = np.zeros((height, width), dtype=bool)
    border[:strip, :] = border[-strip:, :] = True
    border[:, :strip] = border[:, -strip:] = True
    rows, cols = np.nonzero(border)
    ys = np.linspace(-1, 1, height, dtype=np.float32)
    xs = np.linspace(-1, 1, width, dtype=np.float32)
    terms = _polynomial_terms(ys[rows], xs[cols])
    samples = shade_space[rows, cols]

    # Start from the half of the border closest to its median colour: a product touching one edge
    # cannot be the majority of the whole border.
    residual = np.linalg.norm(samples - np.median(samples, axis=0), axis=1)
    inliers = residual <= np.median(residual)
    for _ in range(5):
        coefficients, *_ = np.linalg.lstsq(terms[inliers], samples[inliers], rcond=None)
        residual = np.linalg.norm(samples - terms @ coefficients, axis=1)
        spread = 1.4826 * float(np.median(np.abs(residual[inliers])))
        inliers = residual <= max(3.0 * spread, 2.0)
    noise = float(np.percentile(residual[inliers], 95))
    rgb_coefficients, *_ = np.linalg.lstsq(terms[inliers], srgb[rows, cols][inliers], rcond=None)

    grid_y, grid_x = np.meshgrid(ys, xs, indexing="ij")
    background = _polynomial_terms(grid_y, grid_x) @ coefficients.astype(np.float32)
    return background.astype(np.float32), rgb_coefficients.astype(np.float32), noise


def _shadow_tolerant_distance(shade_space: FloatArray, background: FloatArray) -> FloatArray:
    """Lab distance to the background where a darker copy of the background (a shadow) is cheap.

    In (L+16, a, b) a uniformly darker copy of a colour is that vector scaled down, so the part
    of the difference along the background vector is shading and the rest is a change of colour.
    """
    norm_sq = np.maximum(np.einsum("...c,...c->...", background, background), 1e-3)
    shade = np.einsum("...c,...c->...", shade_space, background) / norm_sq
    off_axis = np.linalg.norm(shade_space - shade[..., None] * background, axis=-1)
    norm = np.sqrt(norm_sq)
    darkening = np.clip(1.0 - shade, 0.0, None)
    cheap_darkening = np.minimum(darkening, SHADOW_DEPTH)
    shadow_cost = SHADOW_WEIGHT * cheap_darkening + (darkening - cheap_darkening)
    along_axis = np.where(shade >= 1.0, shade - 1.0, shadow_cost) * norm
    distance: FloatArray = np.hypot(off_axis, along_axis).astype(np.float32)
    return distance


def _otsu_threshold(values: FloatArray) -> float:
    top = float(np.percentile(values, 99.9))
    if top <= 0:
        return 0.0
    counts, edges = np.histogram(values, bins=256, range=(0.0, top))
    centres = (edges[:-1] + edges[1:]) / 2
    weight_low = np.cumsum(counts)
    weight_high = weight_low[-1] - weight_low
    mass_low = np.cumsum(counts * centres)
    mean_low = mass_low / np.maximum(weight_low, 1)
    mean_high = (mass_low[-1] - mass_low) / np.maximum(weight_high, 1)
    between = weight_low * weight_high * (mean_low - mean_high) ** 2
    return float(edges[int(np.argmax(between)) + 1])


def _morphology_clean(mask: BoolArray) -> BoolArray:
    image = Image.fromarray(mask.astype(np.uint8) * 255, "L")
    opened = image.filter(ImageFilter.MinFilter(3)).filter(ImageFilter.MaxFilter(3))
    closed = opened.filter(ImageFilter.MaxFilter(5)).filter(ImageFilter.MinFilter(5))
    return np.asarray(closed) > 127


def _label_components(mask: BoolArray) -> tuple[IntArray, IntArray]:
    """4-connected component labels (0 = not in mask, 1..n) and the pixel count of each label.

    Works on horizontal runs: runs of adjacent rows that overlap are joined by a vectorised
    union-find, so the cost follows the number of runs, not the number of pixels.
    """
    height, width = mask.shape
    stride = width + 2
    padded = np.zeros((height, stride), dtype=np.int8)
    padded[:, 1:-1] = mask
    steps = np.diff(padded, axis=1)
    run_rows, run_starts = np.nonzero(steps == 1)
    _, run_ends = np.nonzero(steps == -1)
    run_count = len(run_starts)
    if run_count == 0:
        return np.zeros((height, width), dtype=np.int64), np.zeros(1, dtype=np.int64)

    start_keys = run_rows * stride + run_starts
    end_keys = run_rows * stride + run_ends
    first_below = np.searchsorted(end_keys, (run_rows + 1) * stride + run_starts, side="right")
    past_below = np.searchsorted(start_keys, (run_rows + 1) * stride + run_ends, side="left")
    overlaps = np.maximum(past_below - first_below, 0)
    upper = np.repeat(np.arange(run_count), overlaps)
    lower = np.arange(overlaps.sum()) - np.repeat(np.cumsum(overlaps) - overlaps, overlaps)
    lower += np.repeat(first_below, overlaps)

    parent = np.arange(run_count)
    while True:
        root_upper, root_lower = parent[upper], parent[lower]
        unjoined = root_upper != root_lower
        if not unjoined.any():
            break
        high = np.maximum(root_upper[unjoined], root_lower[unjoined])
        low = np.minimum(root_upper[unjoined], root_lower[unjoined])
        np.minimum.at(parent, high, low)
        while True:
            jumped = parent[parent]
            if np.array_equal(jumped, parent):
                break
            parent = jumped

    roots, run_labels = np.unique(parent, return_inverse=True)
    run_labels = run_labels + 1
    sizes = np.bincount(run_labels, weights=run_ends - run_starts, minlength=len(roots) + 1).astype(np.int64)
    painted = np.zeros(height * stride, dtype=np.int64)
    np.add.at(painted, run_rows * stride + run_starts + 1, run_labels)
    np.add.at(painted, run_rows * stride + run_ends + 1, -run_labels)
    labels = np.cumsum(painted.reshape(height, stride), axis=1)[:, 1:-1]
    return labels, sizes


def _keep_main_components(mask: BoolArray) -> BoolArray:
    labels, sizes = _label_components(mask)
    if len(sizes) <= 1:
        return mask
    keep = sizes >= COMPONENT_KEEP_RATIO * sizes[1:].max()
    keep[0] = False
    kept: BoolArray = keep[labels]
    return kept


def _fill_holes(mask: BoolArray, distance: FloatArray, *, open_hole_limit: float) -> BoolArray:
    """Fill enclosed gaps, except large ones whose pixels match the background (a handle's opening)."""
    labels, sizes = _label_components(~mask)
    touches_border = np.zeros(len(sizes), dtype=bool)
    touches_border[0] = True
    for edge in (labels[0, :], labels[-1, :], labels[:, 0], labels[:, -1]):
        touches_border[edge] = True
    flat_labels = labels.ravel()
    order = np.argsort(flat_labels, kind="stable")
    boundaries = np.searchsorted(flat_labels[order], np.arange(len(sizes) + 1))
    sorted_distance = distance.ravel()[order]
    subject_area = int(mask.sum())
    fill = np.zeros(len(sizes), dtype=bool)
    for label in np.flatnonzero(~touches_border):
        hole_distance = sorted_distance[boundaries[label] : boundaries[label + 1]]
        shows_background = float(np.median(hole_distance)) <= open_hole_limit
        fill[label] = sizes[label] < OPEN_HOLE_RATIO * subject_area or not shows_background
    return mask | fill[labels]


def _without_background_spill(rgb: Image.Image, alpha: Image.Image, spill_rgb: FloatArray) -> Image.Image:
    """Unmix the background out of the feathered edge, so no coloured fringe shows on white.

    An edge pixel is `alpha * subject + (1 - alpha) * background`; with the background known
    from the border fit the subject colour follows. Only edge pixels are touched.
    """
    alpha_values = np.asarray(alpha)
    rows, cols = np.nonzero((alpha_values > 0) & (alpha_values < 255))
    if len(rows) == 0:
        return rgb
    pixels = np.array(rgb)
    ys = (rows * (2.0 / max(rgb.height - 1, 1)) - 1).astype(np.float32)
    xs = (cols * (2.0 / max(rgb.width - 1, 1)) - 1).astype(np.float32)
    background = _polynomial_terms(ys, xs) @ spill_rgb
    coverage = alpha_values[rows, cols, None].astype(np.float32) / 255
    mixed = pixels[rows, cols].astype(np.float32)
    subject = background + (mixed - background) / coverage
    pixels[rows, cols] = np.clip(subject, 0, 255).round().astype(np.uint8)
    return Image.fromarray(pixels, "RGB")


def _cutout(rgb: Image.Image, alpha: Image.Image) -> Image.Image:
    cutout = rgb.copy()
    cutout.putalpha(alpha)
    return cutout


def _on_white(rgb: Image.Image, alpha: Image.Image) -> Image.Image:
    white = Image.new("RGB", rgb.size, (255, 255, 255))
    white.paste(rgb, mask=alpha)
    return white


def _enhanced(rgb: Image.Image, alpha: Image.Image) -> Image.Image:
    bbox = alpha.point(lambda value: 255 if value > 127 else 0).getbbox() or (0, 0, *rgb.size)
    subject, subject_alpha = rgb.crop(bbox), alpha.crop(bbox)
    longest = max(subject.size)
    side = min(ENHANCED_SIDE_MAX, round(longest / SUBJECT_FILL))
    scale = side * SUBJECT_FILL / longest
    if scale < 1:
        size = (max(1, round(subject.width * scale)), max(1, round(subject.height * scale)))
        subject = subject.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)
        subject_alpha = subject_alpha.resize(size, Image.Resampling.LANCZOS)
    subject = _gentle_autocontrast(subject, subject_alpha.point(lambda value: 255 if value > 127 else 0))
    subject = ImageEnhance.Color(subject).enhance(1.08)
    subject = subject.filter(ImageFilter.UnsharpMask(radius=1.5, percent=60, threshold=2))
    canvas = Image.new("RGB", (side, side), (255, 255, 255))
    canvas.paste(subject, ((side - subject.width) // 2, (side - subject.height) // 2), mask=subject_alpha)
    return canvas


def _gentle_autocontrast(subject: Image.Image, opaque: Image.Image) -> Image.Image:
    """Widen the subject's tonal range by at most `MAX_CONTRAST_GAIN`, one curve for all channels.

    A full per-channel stretch would shift colours, and a full stretch of a subject with a narrow
    range (a dark bag with one highlight) blows it out; the extra range is shared between the
    shadows and the highlights in proportion to their headroom. Statistics come from the subject
    only: the white around it would pin the stretch.
    """
    histogram = np.array(subject.convert("L").histogram(mask=opaque), dtype=np.float64)
    if histogram.sum() == 0:
        return subject
    cumulative = np.cumsum(histogram) / histogram.sum()
    low = float(np.searchsorted(cumulative, 0.005))
    high = float(np.searchsorted(cumulative, 0.995))
    if high - low < 1:
        return subject
    gain = min(MAX_CONTRAST_GAIN, 255.0 / (high - low))
    headroom = low + (255.0 - high)
    new_low = low - (gain - 1.0) * (high - low) * (low / headroom if headroom > 0 else 0.0)
    curve = np.clip((np.arange(256) - low) * gain + new_low, 0, 255).round().astype(np.uint8)
    return subject.point(curve.tolist() * len(subject.getbands()))


def _encode_png(name: str, picture: Image.Image) -> ImageOutput:
    buffer = io.BytesIO()
    # Level 3 is within a few per cent of the default size at a third of the time on large images.
    picture.save(buffer, format="PNG", compress_level=3)
    return ImageOutput(name=name, data=buffer.getvalue(), content_type="image/png", ext="png")


def _encode_jpeg(name: str, picture: Image.Image) -> ImageOutput:
    buffer = io.BytesIO()
    picture.save(buffer, format="JPEG", quality=JPEG_QUALITY, optimize=True)
    return ImageOutput(name=name, data=buffer.getvalue(), content_type="image/jpeg", ext="jpg")
