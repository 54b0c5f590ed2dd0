from __future__ import annotations

import re
import secrets
import uuid

from core import errors
from media.images import ImageInfo, image_sanitize
from media.storage import get_storage

UPLOAD_PREFIX = "uploads/"
# Exactly the keys media_upload makes; anything else is not one of our uploads.
UPLOAD_KEY = re.compile(r"uploads/(?P<user_id>\d+)/[0-9a-f]{32}\.(?:jpg|png|webp)")


def media_upload(*, user_id: int, data: bytes) -> tuple[str, str, ImageInfo]:
    """Validate and store an uploaded image, re-encoded without its metadata (see
    image_sanitize); returns (key, url, info), info describing the stored file."""
    stored, info = image_sanitize(data=data)
    key = f"{UPLOAD_PREFIX}{user_id}/{uuid.uuid4().hex}.{info.ext}"
    storage = get_storage()
    storage.save(key=key, data=stored, content_type=info.content_type)
    return key, storage.url(key=key), info


def _upload_key(url: str) -> re.Match[str] | None:
    key = get_storage().key_for_url(url)
    return UPLOAD_KEY.fullmatch(key) if key is not None else None


def upload_key_for_user(url: str, *, user_id: int) -> str | None:
    """The storage key when `url` is one the upload endpoint handed out to `user_id`, else None:
    another user's upload is no upload of this user's, so it meets the rules for any other URL."""
    match = _upload_key(url)
    if match is None or match["user_id"] != str(user_id):
        return None
    return match[0]


def upload_key_for_url(url: str) -> str | None:
    """The storage key when `url` is an upload of any user, else None. Deciding on a user's own
    input needs upload_key_for_user; this stays only until tasks/ callers move to it."""
    match = _upload_key(url)
    return match[0] if match is not None else None


def media_result_stage() -> str:
    """An unguessable folder name for one attempt's results: until the audit passes and the task
    hands the URLs out, nobody can guess where the files are (a blocked result is deleted there)."""
    return secrets.token_hex(16)


def media_result_key(*, user_id: int, task_id: uuid.UUID, stage: str, index: int, ext: str) -> str:
    return f"results/{user_id}/{task_id}/{stage}/{index}.{ext}"


def media_require_upload(*, key: str) -> None:
    if not get_storage().exists(key=key):
        raise errors.InvalidParams(
            "上传的图片不存在", "The uploaded image does not exist", fields={"inputImageUrl": ["不存在"]}
        )
