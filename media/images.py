"""Checks that bytes are an image the product accepts, before anything is stored or charged."""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

from django.conf import settings
from PIL import Image, UnidentifiedImageError

from core import errors

FORMATS = {"JPEG": ("image/jpeg", "jpg"), "PNG": ("image/png", "png"), "WEBP": ("image/webp", "webp")}


@dataclass(frozen=True)
class ImageInfo:
    content_type: str
    ext: str
    width: int
    height: int
    size: int


def image_inspect(*, data: bytes) -> ImageInfo:
    """Header check plus a full decode, with the pixel budget enforced before decoding starts."""
    if len(data) > settings.UPLOAD_MAX_BYTES:
        raise errors.InvalidParams("图片不能超过 20 MB", "The image exceeds 20 MB")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                if image.format not in FORMATS:
                    raise errors.InvalidParams(
                        "仅支持 JPEG、PNG、WebP 图片", "Only JPEG, PNG and WebP images are accepted"
                    )
                width, height = image.size
                if width * height > settings.UPLOAD_MAX_PIXELS:
                    raise errors.InvalidParams("图片像素不能超过 4000 万", "The image exceeds 40 megapixels")
                image_format = image.format
                image.load()
    except errors.ApplicationError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise errors.InvalidParams("图片像素过大", "The image is too large to decode") from exc
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise errors.InvalidParams("无法识别的图片文件", "Not a readable image") from exc
    content_type, ext = FORMATS[image_format]
    return ImageInfo(content_type=content_type, ext=ext, width=width, height=height, size=len(data))
