"""Cloud Infinite (CI) emulation, done with Pillow: image processing on upload, and image moderation.

- Processing: a PUT with a `Pic-Operations` header (`{"is_pic_info": 1, "rules": [...]}`, at most five
  rules) stores the original and one result per rule. A rule is `ci-process=GoodsMatting` (the subject
  cut out onto transparency, the backdrop taken from the border colour) or `imageMogr2/<op>/<value>/...`
  with `sharpen` (10 to 300), `bright` and `contrast` (-100 to 100), `format` (png, jpg, jpeg, webp),
  `quality` (1 to 100) and `ignore-error`. A `fileid` with a leading slash is a path from the bucket root,
  otherwise it sits next to the upload. The answer is an `UploadResult` XML document.
- Moderation: `GET /<key>?ci-process=sensitive-content-recognition` answers a `RecognitionResult` with
  the verdict `CosState.set_moderation` chose for the key.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from urllib.parse import parse_qsl

from PIL import Image, ImageChops, ImageEnhance, ImageFilter, ImageStat

from devtools.cos_server.state import CosState
from devtools.cos_server.wire import CosError, Request, bucket_domain, xml, xml_document

MODERATION_PROCESS = "sensitive-content-recognition"
MATTING_PROCESS = "GoodsMatting"
MAX_PIC_RULES = 5

_FORMATS = {"png": ("PNG", "image/png"), "jpg": ("JPEG", "image/jpeg"), "jpeg": ("JPEG", "image/jpeg")}
_FORMATS["webp"] = ("WEBP", "image/webp")
_CONTENT_TYPES = {pil: ctype for pil, ctype in _FORMATS.values()}
_MODERATION_CATEGORIES = ("PornInfo", "TerroristInfo", "PoliticsInfo", "AdsInfo")

# Matting: a pixel this close to the background colour (max channel difference) is background, this far
# is subject; in between it is feathered so edges are not jagged.
_MATTE_LOW = 24
_MATTE_HIGH = 56


def _open_image(data: bytes) -> Image.Image:
    try:
        image = Image.open(io.BytesIO(data))
        image.load()
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise CosError(400, "InvalidImageFormat", f"The object is not an image the service can read: {exc}") from None
    return image


def _encode_image(image: Image.Image, pil_format: str, quality: int) -> bytes:
    if pil_format == "JPEG" and image.mode != "RGB":
        image = image.convert("RGB")
    out = io.BytesIO()
    image.save(out, format=pil_format, **({"quality": quality} if pil_format in ("JPEG", "WEBP") else {}))
    return out.getvalue()


def _background_colour(image: Image.Image) -> tuple[int, int, int]:
    """The median colour of the one-pixel border: a product shot has its backdrop on every edge."""
    rgb = image.convert("RGB")
    width, height = rgb.size
    strips = [
        (0, 0, width, 1),
        (0, height - 1, width, height),
        (0, 0, 1, height),
        (width - 1, 0, width, height),
    ]
    histogram = [0] * 768
    for box in strips:
        for index, count in enumerate(rgb.crop(box).histogram()):
            histogram[index] += count
    half = sum(histogram[:256]) / 2

    def band_median(band: int) -> int:
        seen = 0
        for value in range(256):
            seen += histogram[band * 256 + value]
            if seen >= half:
                return value
        return 255

    return band_median(0), band_median(1), band_median(2)


def goods_matting(image: Image.Image) -> Image.Image:
    """The subject on transparency: pixels that differ enough from the backdrop colour stay opaque."""
    rgb = image.convert("RGB")
    backdrop = Image.new("RGB", rgb.size, _background_colour(rgb))
    red, green, blue = ImageChops.difference(rgb, backdrop).split()
    distance = ImageChops.lighter(ImageChops.lighter(red, green), blue)
    span = _MATTE_HIGH - _MATTE_LOW
    alpha = distance.point(
        lambda d: 0 if d <= _MATTE_LOW else 255 if d >= _MATTE_HIGH else (d - _MATTE_LOW) * 255 // span
    )
    cutout = rgb.convert("RGBA")
    cutout.putalpha(alpha)
    return cutout


def _sharpen(image: Image.Image, amount: int) -> Image.Image:
    return image.filter(ImageFilter.UnsharpMask(radius=2, percent=amount * 2, threshold=2))


def _brighten(image: Image.Image, amount: int) -> Image.Image:
    return ImageEnhance.Brightness(image).enhance(1 + amount / 100)


def _contrast(image: Image.Image, amount: int) -> Image.Image:
    return ImageEnhance.Contrast(image).enhance(1 + amount / 100)


def _on_colour_channels(
    image: Image.Image, operation: Callable[[Image.Image, int], Image.Image], amount: int
) -> Image.Image:
    """Apply `operation` to the colour and keep any alpha as it was."""
    if image.mode == "RGBA":
        result = operation(image.convert("RGB"), amount).convert("RGBA")
        result.putalpha(image.getchannel("A"))
        return result
    return operation(image.convert("RGB"), amount)


def _int_param(op: str, raw: str, low: int, high: int) -> int:
    try:
        value = int(raw)
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise CosError(400, "InvalidArgument", f"imageMogr2/{op} takes an integer in [{low}, {high}], not {raw!r}")
    return value


def image_mogr2(image: Image.Image, pil_format: str, ops: str) -> tuple[Image.Image, str, int]:
    """Run `imageMogr2/<op>/<value>/...`; returns the image, the output format and the quality."""
    parts = [p for p in ops.split("/") if p]
    if len(parts) % 2:
        raise CosError(400, "InvalidArgument", f"imageMogr2 parameters come in pairs: {ops!r}")
    quality = 90
    for op, raw in zip(parts[::2], parts[1::2], strict=True):
        if op == "sharpen":
            image = _on_colour_channels(image, _sharpen, _int_param(op, raw, 10, 300))
        elif op == "bright":
            image = _on_colour_channels(image, _brighten, _int_param(op, raw, -100, 100))
        elif op == "contrast":
            image = _on_colour_channels(image, _contrast, _int_param(op, raw, -100, 100))
        elif op == "quality":
            quality = _int_param(op, raw, 1, 100)
        elif op == "format":
            if raw.lower() not in _FORMATS:
                raise CosError(400, "InvalidArgument", f"imageMogr2/format does not support {raw!r}")
            pil_format = _FORMATS[raw.lower()][0]
        elif op == "ignore-error":
            continue
        else:
            raise CosError(400, "InvalidArgument", f"imageMogr2/{op} is not supported by this server")
    return image, pil_format, quality


def process_rule(data: bytes, rule: str) -> tuple[bytes, str, int, Image.Image]:
    """Apply one Pic-Operations rule; returns the encoded result, its PIL format, quality and image."""
    image = _open_image(data)
    pil_format = image.format or "PNG"
    if rule.startswith("ci-process="):
        process = dict(parse_qsl(rule, keep_blank_values=True))
        if process.get("ci-process") != MATTING_PROCESS:
            raise CosError(400, "InvalidArgument", f"unsupported ci-process rule {rule!r}")
        result, pil_format, quality = goods_matting(image), "PNG", 100
    elif rule.startswith("imageMogr2/"):
        result, pil_format, quality = image_mogr2(image, pil_format, rule[len("imageMogr2/") :])
    else:
        raise CosError(400, "InvalidArgument", f"unsupported processing rule {rule!r}")
    return _encode_image(result, pil_format, quality), pil_format, quality, result


def apply_pic_operations(state: CosState, request: Request, operations: str) -> list[dict[str, object]]:
    """Run every rule of the `Pic-Operations` header on the upload and store the results."""
    try:
        parsed = json.loads(operations)
        rules = parsed.get("rules") or []
        if not isinstance(rules, list) or len(rules) > MAX_PIC_RULES:
            raise ValueError("rules must be a list of at most five")
    except (ValueError, AttributeError) as exc:
        raise CosError(400, "InvalidArgument", f"Pic-Operations is malformed: {exc}") from None
    directory = request.key.rsplit("/", 1)[0] + "/" if "/" in request.key else ""
    results = []
    for rule in rules:
        fileid, text = str(rule.get("fileid", "")), str(rule.get("rule", ""))
        if not fileid or fileid.endswith("/") or not text:
            raise CosError(400, "InvalidArgument", f"Pic-Operations rule is incomplete: {rule!r}")
        # A leading slash is a path from the bucket root; otherwise it is next to the uploaded object.
        target = fileid[1:] if fileid.startswith("/") else directory + fileid
        bucket = str(rule.get("bucket") or request.bucket)
        data, pil_format, quality, image = process_rule(request.body, text)
        stored = state.put(bucket, target, data, _CONTENT_TYPES[pil_format])
        results.append(
            {
                "Key": target,
                "Location": f"{bucket_domain(bucket, state.region)}/{target}",
                "Format": pil_format.lower().replace("jpeg", "jpg"),
                "Width": image.width,
                "Height": image.height,
                "Size": len(data),
                "Quality": quality,
                "ETag": stored.etag,
            }
        )
    return results


def upload_result(
    request: Request, operations: str, *, region: str, etag: str, results: list[dict[str, object]]
) -> bytes:
    """The `UploadResult` answer to a PUT with `Pic-Operations` (whose rules have already run)."""
    info: dict[str, object] = {
        "Key": request.key,
        "Location": f"{bucket_domain(request.bucket, region)}/{request.key}",
    }
    if json.loads(operations).get("is_pic_info") == 1:
        image = _open_image(request.body)
        info["ImageInfo"] = {
            "Format": (image.format or "").lower(),
            "Width": image.width,
            "Height": image.height,
            "Quality": 100,
            "Ave": "0x" + "".join(f"{round(c):02x}" for c in ImageStat.Stat(image.convert("RGB")).mean),
            "Orientation": 0,
        }
    info["ETag"] = etag
    return xml_document("UploadResult", {"OriginalInfo": info, "ProcessResults": {"Object": results}})


def moderate(state: CosState, request: Request, data: bytes, *, job_id: str) -> bytes:
    """The `RecognitionResult` answer of image moderation for the object `request` names, holding `data`."""
    # CI refuses to moderate what it cannot decode, before any verdict is looked up.
    _open_image(data)
    verdict = state.moderation_for(request.key)
    hit = verdict.result != 0
    categories = {
        name: {
            "Code": 0,
            "Msg": "OK",
            "HitFlag": int(hit and name == verdict.label + "Info"),
            "Score": verdict.score if hit and name == verdict.label + "Info" else 0,
            "Label": verdict.label if hit and name == verdict.label + "Info" else "",
        }
        for name in _MODERATION_CATEGORIES
    }
    return xml(
        "RecognitionResult",
        {
            "JobId": job_id,
            "State": verdict.state,
            **({"Code": "InternalError", "Message": "moderation job failed"} if verdict.state != "Success" else {}),
            "Object": request.key,
            "DataId": request.param("dataid") or "",
            "Result": verdict.result,
            "Label": verdict.label,
            "Category": verdict.label if hit else "",
            "SubLabel": "",
            "Score": verdict.score,
            **categories,
        },
    ).encode()
