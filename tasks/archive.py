"""A ZIP of a successful task's stored results, streamed file by file (SPEC §8 archive)."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator

from core import errors
from media.storage import get_storage
from tasks.models import Task, TaskStatus


class _Chunks(io.RawIOBase):
    """A write-only sink the ZIP writer fills and the response drains between files."""

    def __init__(self) -> None:
        self._chunks: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self._chunks.append(bytes(data))
        return len(data)

    def drain(self) -> Iterator[bytes]:
        chunks, self._chunks = self._chunks, []
        yield from chunks


def archive_names(task: Task) -> list[str]:
    """Stable names: the task's short id and the result's place, e.g. `3f2a9c1d-01.png`."""
    prefix = task.id.hex[:8]
    return [f"{prefix}-{n:02d}.{url.rsplit('.', 1)[-1].split('?')[0]}" for n, url in enumerate(task.result_urls, 1)]


def task_archive(*, task: Task) -> Iterator[bytes]:
    """The bytes of the ZIP, one stored file at a time (stored, not deflated: the images are
    compressed already). Refused unless the task succeeded."""
    if task.status != TaskStatus.SUCCESS:
        raise errors.InvalidTransition("只有成功的任务可以下载结果", "Only a successful task has results")
    storage = get_storage()
    keys = [storage.key_for_url(url) for url in task.result_urls]
    if any(key is None for key in keys):
        raise errors.InvalidTransition(
            "该任务的结果不在本服务的存储中", "The results are not in this service's storage"
        )
    return _stream(zip(archive_names(task), keys, strict=True))


def _stream(files: Iterator[tuple[str, str | None]]) -> Iterator[bytes]:
    storage = get_storage()
    sink = _Chunks()
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_STORED) as archive:
        for name, key in files:
            archive.writestr(name, storage.read(key=str(key)))
            yield from sink.drain()
    yield from sink.drain()
