"""Files on local disk (media/local_storage.py): no key reaches outside MEDIA_ROOT, whichever
operation carries it."""

from __future__ import annotations

from pathlib import Path

import pytest

from media.local_storage import LocalStorage


@pytest.fixture
def storage(tmp_path: Path) -> LocalStorage:
    return LocalStorage(root=tmp_path / "media", base_url="http://testserver/media/")


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    secret = tmp_path / "secret.txt"
    secret.write_bytes(b"not yours")
    return secret


ESCAPES = ["../secret.txt", "uploads/1/../../../secret.txt", "/etc/passwd", "uploads/../../secret.txt"]


@pytest.mark.parametrize("key", ESCAPES)
def test_a_key_that_escapes_the_root_is_refused_by_every_operation(
    storage: LocalStorage, outside: Path, key: str
) -> None:
    for operation in (
        lambda: storage.read(key=key),
        lambda: storage.exists(key=key),
        lambda: storage.delete(key=key),
        lambda: storage.save(key=key, data=b"overwritten", content_type="text/plain"),
    ):
        with pytest.raises(ValueError, match="escapes the root"):
            operation()
    assert outside.read_bytes() == b"not yours", "the file outside the root is untouched"


def test_keys_inside_the_root_work_and_dot_dot_inside_it_stays_inside(storage: LocalStorage) -> None:
    storage.save(key="uploads/1/a.png", data=b"png", content_type="image/png")
    assert storage.read(key="uploads/1/../1/a.png") == b"png"
    assert storage.exists(key="uploads/1/a.png") and not storage.exists(key="uploads/1/b.png")
    assert storage.url(key="uploads/1/a.png") == "http://testserver/media/uploads/1/a.png"
    assert storage.key_for_url("http://testserver/media/uploads/1/a.png") == "uploads/1/a.png"
    assert storage.key_for_url("http://elsewhere/media/uploads/1/a.png") is None
    storage.delete(key="uploads/1/a.png")
    storage.delete(key="uploads/1/a.png")  # deleting what is gone is no error
    assert not storage.exists(key="uploads/1/a.png")


def test_a_failed_write_leaves_no_partial_file(storage: LocalStorage, monkeypatch: pytest.MonkeyPatch) -> None:
    def disk_full(self: Path, data: bytes) -> int:
        Path.write_text(self, "half")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Path, "write_bytes", disk_full)
    with pytest.raises(OSError):
        storage.save(key="results/1/a.png", data=b"png", content_type="image/png")
    assert not list((storage.root / "results" / "1").iterdir())
