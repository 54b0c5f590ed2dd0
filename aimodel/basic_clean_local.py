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
5. The mask is feathered at the working size and enlarged to full resolution a band of rows at
   a time, never as a whole image; where it is partial, the background colour is unmixed from
   the pixel so no fringe of it shows on white.

Outputs, in order: "cutout" (RGBA PNG, full resolution, written by `aimodel.png`; fully
transparent pixels are white, which compresses far better than the backdrop they replace),
"white" (the subject on #FFFFFF, full resolution, JPEG quality 92: photographic content, about a
sixth of the PNG size, and every marketplace accepts it; flat white areas decode back to exactly
255), "enhanced" (autocontrast, slight colour and unsharp mask applied to the subject only,
centred on a white square with the subject filling `SUBJECT_FILL` of the side, side at most
`ENHANCED_SIDE_MAX`, JPEG).

Bounds. Mask work is O(`MASK_WORK_SIDE`²) whatever the input size: float32 maps of about 0.7 M
pixels, some 60 MB at their peak. At full resolution there is one 8-bit Pillow image (4 bytes a
pixel), changed in place from the photo into the subject on white a band of `STRIP_ROWS` rows at
a time; each band, turned into the cut-out's, goes to the PNG encoder, which holds a few of them
while two threads deflate them. On a 40-megapixel JPEG (the upload limit) that peaks at 245 to
265 MiB resident, 39 MiB of it the interpreter with numpy and Pillow, during the mask and the
enhanced square (the band pass stays under about 245 MiB), and takes 2.8 to 3.2 s of CPU, spread
over two cores during the band pass (`python -m bench.engine`, see BENCHMARKS.md; it was 594 MiB
and 4.2 s, then 4.6 to 5.1 s of CPU with Pillow's PNG encoder, measured on the same busy machine).
Inputs that must be converted to RGB (greyscale, palette, CMYK, 16-bit, transparency) hold a
second full-size copy while they are. Nothing else grows with image content but the number of
mask runs and holes, which the working-copy size bounds, and the encoded outputs.
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterator

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageEnhance, ImageFilter, ImageOps, UnidentifiedImageError

from aimodel.png import png_encode_rgba
from aimodel.types import ImageOutput

MASK_WORK_SIDE = 1024
ENHANCED_SIDE_MAX = 2048
SUBJECT_FILL = 0.85
MAX_CONTRAST_GAIN = 1.2
JPEG_QUALITY = 92
# Rows handled at once by the full-resolution passes: 2 MB of a 40 MP photo.
STRIP_ROWS = 64
# Rows of the working copy over which the background field is evaluated at once.
FIELD_BAND_ROWS = 64
# Point table for "more opaque than not".
OPAQUE_LUT = [0] * 128 + [255] * 128
# One RGBX or RGBA pixel read as a 32-bit word, whatever the byte order: its colour bytes alone,
# which are also the cut-out's transparent white.
WHITE_RGB_WORD = np.frombuffer(b"\xff\xff\xff\x00", dtype=np.uint32)[0]
# A white RGBX pixel as Pillow stores it.
OPAQUE_WHITE_WORD = np.uint32(0xFFFFFFFF)
# Per coverage value, the bits that make a pixel white: its colour bytes where nothing is covered.
UNCOVERED_TO_WHITE = np.where(np.arange(256) == 0, WHITE_RGB_WORD, np.uint32(0)).astype(np.uint32)

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
UintArray = npt.NDArray[np.uint8]


def basic_clean_local(*, image: bytes) -> list[ImageOutput]:
    """Return the "cutout", "white" and "enhanced" images of a product photo.

    The one full-resolution image is changed in place from the photo into the subject on white, a
    band of rows at a time; each band is also turned into the cut-out's band and handed to the PNG
    encoder, which deflates it on other threads while the next band is made. The alpha is enlarged
    from the working-size mask a band at a time and never exists at full size.
    """
    picture = _decode_rgb(image)
    soft_mask, backdrop_field = _subject_mask(_working_copy(picture))
    enhanced = _encode_jpeg("enhanced", _enhanced(picture, soft_mask, backdrop_field), optimize=True)
    cutout = png_encode_rgba(
        width=picture.width, height=picture.height, bands=_cut_out_bands(picture, soft_mask, backdrop_field)
    )
    # Huffman optimisation would make libjpeg hold every coefficient of the photo for a second
    # pass: 120 MB more at 40 MP, for a file about a sixth smaller.
    white = _encode_jpeg("white", picture, optimize=False)
    return [ImageOutput(name="cutout", data=cutout, content_type="image/png", ext="png"), white, enhanced]


def _decode_rgb(data: bytes) -> Image.Image:
    try:
        opened: Image.Image = Image.open(io.BytesIO(data))
        opened.load()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise ValueError(f"basic_clean: cannot decode the input image ({exc})") from exc
    # In place, and a conversion only when the mode differs: each copy of a 40 MP photo is 160 MB.
    ImageOps.exif_transpose(opened, in_place=True)
    if opened.mode in ("I", "I;16", "I;16B", "I;16L"):
        # 16-bit greyscale PNG: Pillow would clip it to 8 bits instead of scaling it.
        wide = np.asarray(opened, dtype=np.float32)
        opened = Image.fromarray(np.clip(wide / 257.0, 0, 255).round().astype(np.uint8), "L")
    if opened.has_transparency_data:
        # Transparent areas become white background, which the segmentation then removes.
        rgba = opened.convert("RGBA")
        flattened = Image.new("RGB", rgba.size, (255, 255, 255))
        flattened.paste(rgba, mask=rgba.getchannel("A"))
        return flattened
    return opened if opened.mode == "RGB" else opened.convert("RGB")


def _subject_mask(work: Image.Image) -> tuple[Image.Image, FloatArray]:
    """The feathered subject mask of the working copy and the backdrop's sRGB polynomial coefficients."""
    distance, backdrop_field, noise = _backdrop_distance(work)
    threshold = max(_otsu_threshold(distance), MIN_THRESHOLD, 4.0 * noise)
    mask = _morphology_clean(distance > threshold)
    mask = _keep_main_components(mask)
    mask = _fill_holes(mask, distance, open_hole_limit=max(4.0 * noise, MIN_THRESHOLD / 2))
    if not mask.any():
        # Nothing separates from the background: keep the whole photo rather than return nothing.
        return Image.new("L", work.size, 255), backdrop_field
    soft = Image.fromarray(mask.astype(np.uint8) * 255, "L").filter(ImageFilter.GaussianBlur(0.8))
    return soft, backdrop_field


def _backdrop_distance(work: Image.Image) -> tuple[FloatArray, FloatArray, float]:
    """Each pixel's distance to the backdrop, the backdrop's sRGB coefficients and its noise level.

    The colour maps end here, so that they are gone before the mask is cleaned.
    """
    pixels = np.asarray(work.filter(ImageFilter.GaussianBlur(1)), dtype=np.float32)
    shade_space = _srgb_to_lab(pixels)
    shade_space[..., 0] += 16.0
    background, backdrop_field, noise = _fit_background(shade_space, pixels)
    del pixels
    return _shadow_tolerant_distance(shade_space, background), backdrop_field, noise


def _working_copy(rgb: Image.Image) -> Image.Image:
    scale = MASK_WORK_SIDE / max(rgb.size)
    if scale >= 1:
        return rgb
    size = (max(1, round(rgb.width * scale)), max(1, round(rgb.height * scale)))
    return rgb.resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0)


def _srgb_to_lab(srgb: FloatArray) -> FloatArray:
    # In place wherever the formula allows: this runs beside the full-size photo, and every
    # temporary is another map of the working copy.
    linear = srgb / 255.0
    dark = linear <= 0.04045
    dark_linear = linear[dark] / 12.92
    linear += 0.055
    linear /= 1.055
    linear **= 2.4
    linear[dark] = dark_linear
    to_xyz = np.array(
        [
            [0.4124564, 0.3575761, 0.1804375],
            [0.2126729, 0.7151522, 0.0721750],
            [0.0193339, 0.1191920, 0.9503041],
        ],
        dtype=np.float32,
    )
    d65_white = np.array([0.95047, 1.0, 1.08883], dtype=np.float32)
    xyz = linear @ to_xyz.T
    del linear, dark
    xyz /= d65_white
    epsilon, kappa = 216 / 24389, 24389 / 27
    faint = xyz <= epsilon
    faint_f = (kappa * xyz[faint] + 16) / 116
    f = np.cbrt(xyz, out=xyz)
    f[faint] = faint_f
    lab = np.empty_like(f)
    lab[..., 0] = 116 * f[..., 1] - 16
    lab[..., 1] = 500 * (f[..., 0] - f[..., 1])
    lab[..., 2] = 200 * (f[..., 1] - f[..., 2])
    return lab


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

    # Evaluated a band of rows at a time: the six terms of the whole grid would be twice the
    # size of the field itself.
    background = np.empty((height, width, 3), dtype=np.float32)
    for top in range(0, height, FIELD_BAND_ROWS):
        band_y, band_x = np.meshgrid(ys[top : top + FIELD_BAND_ROWS], xs, indexing="ij")
        background[top : top + FIELD_BAND_ROWS] = _polynomial_terms(band_y, band_x) @ coefficients
    return background, rgb_coefficients.astype(np.float32), noise


def _shadow_tolerant_distance(shade_space: FloatArray, background: FloatArray) -> FloatArray:
    """Lab distance to the background where a darker copy of the background (a shadow) is cheap.

    In (L+16, a, b) a uniformly darker copy of a colour is that vector scaled down, so the part
    of the difference along the background vector is shading and the rest is a change of colour.
    """
    norm_sq = np.maximum(np.einsum("...c,...c->...", background, background), 1e-3)
    shade = np.einsum("...c,...c->...", shade_space, background) / norm_sq
    colour_change = shade[..., None] * background
    np.subtract(shade_space, colour_change, out=colour_change)
    off_axis = np.linalg.norm(colour_change, axis=-1)
    # A full colour map, freed before the five single-channel ones below.
    del colour_change
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
    """An opening (3×3) then a closing (5×5) with square windows, edge pixels repeated outwards.

    The same as Pillow's MinFilter and MaxFilter, which repeat the edge pixels too, in a few
    milliseconds instead of 0.2 s: those sort every window.
    """
    opened = _dilated(_eroded(mask, 3), 3)
    return _eroded(_dilated(opened, 5), 5)


def _eroded(mask: BoolArray, size: int) -> BoolArray:
    return _square_window(mask, size, np.logical_and)


def _dilated(mask: BoolArray, size: int) -> BoolArray:
    return _square_window(mask, size, np.logical_or)


def _square_window(mask: BoolArray, size: int, combine: np.ufunc) -> BoolArray:
    """`combine` over each pixel's `size`×`size` window, the edge pixels repeated beyond the image.

    A square window is a row window of a column window, and each of those a few shifted copies.
    """
    reach = size // 2
    height, width = mask.shape
    padded = np.pad(mask, reach, mode="edge")
    columns = padded[:, :width].copy()
    for shift in range(1, size):
        combine(columns, padded[:, shift : shift + width], out=columns)
    result = columns[:height].copy()
    for shift in range(1, size):
        combine(result, columns[shift : shift + height], out=result)
    return result


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


def _edges(coverage: UintArray) -> tuple[IntArray, IntArray, FloatArray]:
    """Rows, columns and coverage (0 to 1, one column) of the partly covered pixels."""
    # In uint8, 0 - 1 wraps to 255 and 255 - 1 is 254: one comparison finds them.
    found = np.flatnonzero(coverage - np.uint8(1) < 254)
    rows, cols = np.divmod(found, coverage.shape[1])
    weight: FloatArray = coverage.ravel()[found, None].astype(np.float32) / np.float32(255)
    return rows, cols, weight


def _backdrop_colours(
    backdrop_field: FloatArray,
    rows: IntArray,
    cols: IntArray,
    *,
    frame_size: tuple[int, int],
    region: tuple[int, int, int, int] | None = None,
    size: tuple[int, int] | None = None,
) -> FloatArray:
    """The backdrop's colours at pixels of an image of `size` resampled from `region` of the frame
    (by default, the frame itself at full size)."""
    region = region or (0, 0, *frame_size)
    size = size or frame_size
    coordinates = []
    for pixel, start, end, count, frame in (
        (cols, region[0], region[2], size[0], frame_size[0]),
        (rows, region[1], region[3], size[1], frame_size[1]),
    ):
        in_frame = start + (pixel + 0.5) * ((end - start) / count) - 0.5
        # The field's coordinates run from -1 at the first pixel centre to 1 at the last.
        coordinates.append((in_frame * (2.0 / max(frame - 1, 1)) - 1).astype(np.float32))
    xs, ys = coordinates
    colours: FloatArray = _polynomial_terms(ys, xs) @ backdrop_field
    return colours


def _unmixed(mixed: FloatArray, backdrop: FloatArray | float, coverage: FloatArray) -> FloatArray:
    """The subject colour in `mixed = coverage * subject + (1 - coverage) * backdrop`."""
    subject: FloatArray = np.clip(backdrop + (mixed - backdrop) / coverage, 0, 255)
    return subject


def _cut_out_bands(picture: Image.Image, soft_mask: Image.Image, backdrop_field: FloatArray) -> Iterator[UintArray]:
    """Turn the photo into the subject on white in place, a band of rows at a time, and yield the
    cut-out of each band (RGBA rows), made from the band on white.

    The coverage is the mask enlarged to the frame band by band: within 1/255 of enlarging it
    whole. Whatever the photo shows where nothing is covered becomes white, so only the columns
    between the first and the last covered pixel of a band are read from it, and a band that no
    mask row reaches is not enlarged either.
    """
    to_mask = soft_mask.height / picture.height
    mask_rows_in_use = np.asarray(soft_mask).max(axis=1) > 0
    for top in range(0, picture.height, STRIP_ROWS):
        box = (0, top, picture.width, min(top + STRIP_ROWS, picture.height))
        source = (0.0, box[1] * to_mask, float(soft_mask.width), box[3] * to_mask)
        width, height = box[2] - box[0], box[3] - box[1]
        # Bilinear enlargement reads the mask rows within one row of the band's own, no further.
        if mask_rows_in_use[max(0, math.floor(source[1]) - 2) : math.floor(source[3]) + 3].any():
            coverage = np.asarray(soft_mask.resize((width, height), Image.Resampling.BILINEAR, box=source))
            covered_columns = np.flatnonzero(coverage.max(axis=0))
        else:
            covered_columns = np.zeros(0, dtype=np.int64)
        if not len(covered_columns):
            picture.paste((255, 255, 255), box)
            transparent = np.full((height, width), WHITE_RGB_WORD, dtype=np.uint32)
            yield transparent.view(np.uint8).reshape(height, width, 4)
            continue
        # Pillow keeps an RGB pixel in 4 bytes, the last unused: the band has the same layout,
        # pasted back as it is, and the cut-out's alpha then goes into the fourth byte.
        band: UintArray = np.full((height, width), OPAQUE_WHITE_WORD, dtype=np.uint32).view(np.uint8)
        band = band.reshape(height, width, 4)
        columns = slice(int(covered_columns[0]), int(covered_columns[-1]) + 1)
        read = picture.crop((columns.start, box[1], columns.stop, box[3])).tobytes("raw", "RGBX")
        band[:, columns] = np.frombuffer(read, dtype=np.uint8).reshape(height, columns.stop - columns.start, 4)
        edges = _edges(coverage)
        _put_on_white(band, coverage, edges, columns, top=top, backdrop_field=backdrop_field, frame_size=picture.size)
        # As RGBA, Pillow copies the four bytes as they are; as RGBX, it would convert them.
        picture.paste(Image.frombuffer("RGBA", (width, height), band, "raw", "RGBA", 0, 1), box)
        _cut_out(band, coverage, edges)
        yield band


def _put_on_white(
    band: UintArray,
    coverage: UintArray,
    edges: tuple[IntArray, IntArray, FloatArray],
    columns: slice,
    *,
    top: int,
    backdrop_field: FloatArray,
    frame_size: tuple[int, int],
) -> None:
    """Turn a band of the photo (RGBX, white outside `columns`) into the subject on white, in place.

    Edge pixels are unmixed from the backdrop before they are mixed with white, so no fringe of
    the backdrop shows; uncovered pixels become white and covered ones stay as they are.
    """
    rows, cols, weight = edges
    backdrop = _backdrop_colours(backdrop_field, rows + top, cols, frame_size=frame_size)
    subject = _unmixed(band[rows, cols, :3].astype(np.float32), backdrop, weight)
    band[rows, cols, :3] = (subject * weight + 255 * (1 - weight)).round().astype(np.uint8)
    # Uncovered pixels become white: one OR of a 32-bit word a pixel, from a table, is several
    # times faster than a boolean index or a broadcast over the colour bytes.
    words = band[:, columns].view(np.uint32)[..., 0]
    np.bitwise_or(words, np.take(UNCOVERED_TO_WHITE, coverage[:, columns]), out=words)


def _cut_out(band: UintArray, coverage: UintArray, edges: tuple[IntArray, IntArray, FloatArray]) -> None:
    """Turn a band of the subject on white into the subject on transparency (RGBA), in place.

    The edge colours come back by unmixing white, exact but for a rounding error that the alpha
    scales down again wherever the cut-out is shown. Transparent pixels stay white, which
    compresses far better than the photo's backdrop would.
    """
    rows, cols, weight = edges
    band[rows, cols, :3] = _unmixed(band[rows, cols, :3].astype(np.float32), 255.0, weight).round().astype(np.uint8)
    band[..., 3] = coverage


def _enhanced(picture: Image.Image, soft_mask: Image.Image, backdrop_field: FloatArray) -> Image.Image:
    """The subject enhanced and centred on a white square, made from the photo as decoded.

    The subject's box is resampled straight from the photo (cropping it first would copy it),
    with an alpha resampled from the working-size mask; its edge is unmixed at the output size,
    where each pixel's colour and coverage are both averages over the photo's.
    """
    to_frame_x, to_frame_y = picture.width / soft_mask.width, picture.height / soft_mask.height
    mask_box = soft_mask.point(OPAQUE_LUT).getbbox() or (0, 0, *soft_mask.size)
    bbox = (
        math.floor(mask_box[0] * to_frame_x),
        math.floor(mask_box[1] * to_frame_y),
        min(picture.width, math.ceil(mask_box[2] * to_frame_x)),
        min(picture.height, math.ceil(mask_box[3] * to_frame_y)),
    )
    box_width, box_height = bbox[2] - bbox[0], bbox[3] - bbox[1]
    longest = max(box_width, box_height)
    side = min(ENHANCED_SIDE_MAX, round(longest / SUBJECT_FILL))
    scale = min(1.0, side * SUBJECT_FILL / longest)
    size = (max(1, round(box_width * scale)), max(1, round(box_height * scale)))
    if scale < 1:
        subject = picture.resize(size, Image.Resampling.LANCZOS, box=bbox, reducing_gap=3.0)
    else:
        subject = picture.crop(bbox)
    mask_region = (bbox[0] / to_frame_x, bbox[1] / to_frame_y, bbox[2] / to_frame_x, bbox[3] / to_frame_y)
    subject_alpha = soft_mask.resize(size, Image.Resampling.BILINEAR, box=mask_region)

    pixels = np.array(subject)
    rows, cols, weight = _edges(np.asarray(subject_alpha))
    backdrop = _backdrop_colours(backdrop_field, rows, cols, frame_size=picture.size, region=bbox, size=size)
    pixels[rows, cols] = _unmixed(pixels[rows, cols].astype(np.float32), backdrop, weight).round().astype(np.uint8)
    subject = Image.fromarray(pixels, "RGB")

    subject = _gentle_autocontrast(subject, subject_alpha.point(OPAQUE_LUT))
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


def _encode_jpeg(name: str, picture: Image.Image, *, optimize: bool) -> ImageOutput:
    buffer = io.BytesIO()
    picture.save(buffer, format="JPEG", quality=JPEG_QUALITY, optimize=optimize)
    return ImageOutput(name=name, data=buffer.getvalue(), content_type="image/jpeg", ext="jpg")
