from __future__ import annotations

import re
import uuid

from core import errors
from media.images import ImageInfo, image_inspect
from media.storage import get_storage

UPLOAD_PREFIX = "uploads/"
# Exactly the keys media_upload makes; anything else is not one of our uploads.
UPLOAD_KEY = re.compile(r"uploads/\d+/[0-9a-f]{32}\.(?:jpg|png|webp)")


def media_upload(*, user_id: int, data: bytes) -> tuple[str, str, ImageInfo]:
    """Validate and store an uploaded image; returns (key, url, info)."""
    info = image_inspect(data=data)
    key = f"{UPLOAD_PREFIX}{user_id}/{uuid.uuid4().hex}.{info.ext}"
    storage = get_storage()
    storage.save(key=key, data=data, content_type=info.content_type)
    return key, storage.url(key=key), info


def upload_key_for_url(url: str) -> str | None:
    """The storage key when `url` is one the upload endpoint handed out, else None."""
    key = get_storage().key_for_url(url)
    if key is None or not UPLOAD_KEY.fullmatch(key):
        return None
    return key


def media_result_key(*, user_id: int, task_id: uuid.UUID, index: int, ext: str) -> str:
    return f"results/{user_id}/{task_id}/{index}.{ext}"


def media_require_upload(*, key: str) -> None:
    if not get_storage().exists(key=key):
        raise errors.InvalidParams(
            "上传的图片不存在", "The uploaded image does not exist", fields={"inputImageUrl": ["不存在"]}
        )
