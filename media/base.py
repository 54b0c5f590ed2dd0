"""The storage interface every backend implements, and its one error."""

from __future__ import annotations

from typing import Protocol


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
