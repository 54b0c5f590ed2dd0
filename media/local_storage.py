"""Files on local disk: the embedded default's storage."""

from __future__ import annotations

from pathlib import Path


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
        try:
            tmp.write_bytes(data)
            tmp.replace(path)
        except OSError:
            tmp.unlink(missing_ok=True)  # a half-written file is never left behind
            raise

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
