"""Where the product keeps files: the configured backend (local disk or COS) behind one interface."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from django.conf import settings

from media.base import Storage, StorageError
from media.cos_storage import CosStorage
from media.local_storage import LocalStorage

__all__ = ["Storage", "StorageError", "get_storage"]


@cache
def get_storage() -> Storage:
    if settings.STORAGE_BACKEND == "cos":
        return CosStorage.from_settings()
    return LocalStorage(
        root=Path(settings.MEDIA_ROOT),
        base_url=settings.PUBLIC_BASE_URL.rstrip("/") + settings.MEDIA_URL,
    )
