"""Where the product keeps files: one small interface, a local-disk backend and a COS backend."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Protocol

from django.conf import settings


class StorageError(OSError):
    """The storage backend failed (network, service error); trying again later may help."""


class Storage(Protocol):
    def save(self, *, key: str, data: bytes, content_type: str) -> None: ...

    def read(self, *, key: str) -> bytes: ...

    def delete(self, *, key: str) -> None: ...

    def exists(self, *, key: str) -> bool: ...

    def url(self, *, key: str) -> str:
        """The file's permanent address, as stored on tasks."""
        ...

    def signed(self, url: str) -> str:
        """The address to hand out now: a private bucket adds a fresh presigned query."""
        ...

    def key_for_url(self, url: str) -> str | None:
        """The key of a file this storage handed out under `url`, or None when it is not ours."""
        ...


class LocalStorage:
    """Files under MEDIA_ROOT, served at PUBLIC_BASE_URL + MEDIA_URL + key."""

    def __init__(self, *, root: Path, base_url: str) -> None:
        self.root = root
        self.base_url = base_url.rstrip("/") + "/"

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root.resolve()):
            raise ValueError(f"storage key escapes the root: {key!r}")
        return path

    def save(self, *, key: str, data: bytes, content_type: str) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".part")
        tmp.write_bytes(data)
        tmp.replace(path)

    def read(self, *, key: str) -> bytes:
        return self._path(key).read_bytes()

    def delete(self, *, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def exists(self, *, key: str) -> bool:
        return self._path(key).is_file()

    def url(self, *, key: str) -> str:
        return self.base_url + key

    def signed(self, url: str) -> str:
        return url

    def key_for_url(self, url: str) -> str | None:
        if url.startswith(self.base_url):
            return url[len(self.base_url) :]
        return None


@cache
def get_storage() -> Storage:
    if settings.STORAGE_BACKEND == "cos":
        from media.cos_storage import CosStorage

        return CosStorage.from_settings()
    return LocalStorage(
        root=Path(settings.MEDIA_ROOT),
        base_url=settings.PUBLIC_BASE_URL.rstrip("/") + settings.MEDIA_URL,
    )
