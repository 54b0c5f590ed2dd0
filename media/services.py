from __future__ import annotations

import logging
import re
import secrets
import uuid
from datetime import timedelta

from django.conf import settings
from django.db import connection
from django.utils import timezone

from core import errors
from media.images import ImageInfo, image_sanitize
from media.models import Upload
from media.storage import get_storage

logger = logging.getLogger(__name__)

UPLOAD_PREFIX = "uploads/"
# Exactly the keys media_upload makes; anything else is not one of our uploads.
UPLOAD_KEY = re.compile(r"uploads/(?P<user_id>\d+)/[0-9a-f]{32}\.(?:jpg|png|webp)")


def media_upload(*, user_id: int, data: bytes) -> tuple[str, str, ImageInfo]:
    """Validate and store an uploaded image, re-encoded without its metadata (see
    image_sanitize), and record it; returns (key, url, info), info describing the stored file."""
    stored, info = image_sanitize(data=data)
    key = f"{UPLOAD_PREFIX}{user_id}/{uuid.uuid4().hex}.{info.ext}"
    storage = get_storage()
    storage.save(key=key, data=stored, content_type=info.content_type)
    Upload.objects.create(
        user_id=user_id,
        key=key,
        content_type=info.content_type,
        size=info.size,
        width=info.width,
        height=info.height,
    )
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


# Ordering a job marks its upload as used (kept by the clean-up) and so learns that the upload is
# the caller's: one statement on the create's hot path, sent as written.
_CLAIM_SQL = "UPDATE {uploads} SET used_at = COALESCE(used_at, %s) WHERE key = %s AND user_id = %s"


def media_require_upload(*, key: str, user_id: int) -> None:
    """The member's own upload, looked up in the database (no storage round trip), and marked as
    used so that the clean-up keeps it. Uploads made before uploads were recorded are looked up
    in storage."""
    with connection.cursor() as cursor:
        cursor.execute(
            _CLAIM_SQL.format(uploads=connection.ops.quote_name(Upload._meta.db_table)),
            [connection.ops.adapt_datetimefield_value(timezone.now()), key, user_id],
        )
        if cursor.rowcount:
            return
    recorded_for_another = Upload.objects.filter(key=key).exists()
    if recorded_for_another or not get_storage().exists(key=key):
        raise errors.InvalidParams(
            "上传的图片不存在", "The uploaded image does not exist", fields={"inputImageUrl": ["不存在"]}
        )


def media_uploads_clean(*, limit: int = 1000) -> int:
    """Deletes uploads no task was ever ordered on, older than UPLOAD_RETENTION_DAYS (their files,
    then their rows), oldest first, at most `limit` per call. Returns how many went."""
    cutoff = timezone.now() - timedelta(days=settings.UPLOAD_RETENTION_DAYS)
    stale = list(Upload.objects.filter(used_at__isnull=True, created_at__lt=cutoff).order_by("created_at")[:limit])
    storage = get_storage()
    removed = []
    for upload in stale:
        try:
            storage.delete(key=upload.key)
        except OSError:
            logger.warning("could not delete the unused upload %s; the next clean-up tries again", upload.key)
            continue
        removed.append(upload.pk)
    # A task ordered on one of them meanwhile marked it used: such a row stays (its file may be gone;
    # that task then fails and is refunded, as for any missing input).
    Upload.objects.filter(pk__in=removed, used_at__isnull=True).delete()
    return len(removed)
