"""CosStorage against the local COS server, through the real SDK; no database needed."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
import requests
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from core.cos import cos_base_url, cos_client
from devtools.cos_testing import RunningCos
from media.cos_storage import CosStorage
from media.storage import StorageError


def storage_for(cos: RunningCos, *, private: bool) -> CosStorage:
    return CosStorage(client=cos.client(), bucket=cos.bucket, base_url=cos.endpoint_url, private=private)


@pytest.fixture
def cos_settings(cos: RunningCos) -> Iterator[None]:
    if not settings.configured:
        settings.configure()
    with override_settings(
        COS_SECRET_ID=cos.secret_id,
        COS_SECRET_KEY=cos.secret_key,
        COS_REGION=cos.region,
        COS_BUCKET=cos.bucket,
        COS_ENDPOINT_URL=cos.endpoint_url + "/",
        COS_PRIVATE=True,
    ):
        yield


def test_save_read_exists_delete(cos: RunningCos) -> None:
    storage = storage_for(cos, private=True)
    storage.save(key="uploads/2026/a.png", data=b"\x89PNG bytes", content_type="image/png")

    assert storage.exists(key="uploads/2026/a.png")
    assert storage.read(key="uploads/2026/a.png") == b"\x89PNG bytes"
    assert cos.state.get(cos.bucket, "uploads/2026/a.png").content_type == "image/png"  # type: ignore[union-attr]

    storage.delete(key="uploads/2026/a.png")
    assert not storage.exists(key="uploads/2026/a.png")
    storage.delete(key="uploads/2026/a.png")


def test_exists_does_not_hide_other_errors(cos: RunningCos) -> None:
    storage = CosStorage(
        client=cos.client(secret_key="wrong"), bucket=cos.bucket, base_url=cos.endpoint_url, private=True
    )
    with pytest.raises(StorageError, match="403"):
        storage.exists(key="anything")


def test_public_url_is_endpoint_plus_key_and_is_recognised(cos: RunningCos) -> None:
    storage = storage_for(cos, private=False)
    storage.save(key="results/t1/white.jpg", data=b"jpeg", content_type="image/jpeg")
    cos.set_acl("public-read")

    url = storage.url(key="results/t1/white.jpg")
    assert url == f"{cos.endpoint_url}/results/t1/white.jpg"
    assert requests.get(url).content == b"jpeg"
    assert storage.key_for_url(url) == "results/t1/white.jpg"
    assert storage.key_for_url(url + "?imageMogr2/thumbnail/100x") == "results/t1/white.jpg"


def test_private_url_is_presigned_and_is_recognised(cos: RunningCos) -> None:
    storage = storage_for(cos, private=True)
    storage.save(key="results/t1/cut out.png", data=b"png", content_type="image/png")

    stored = storage.url(key="results/t1/cut out.png")
    assert stored == f"{cos.endpoint_url}/results/t1/cut%20out.png", "what tasks keep carries no signature"
    url = storage.signed(stored)
    assert url.startswith(f"{cos.endpoint_url}/results/t1/cut%20out.png?")
    assert requests.get(url).content == b"png"
    assert requests.get(url.split("?", 1)[0]).status_code == 403
    assert storage.key_for_url(url) == "results/t1/cut out.png"

    query = dict(parse_qsl(urlsplit(url).query))
    start, end = (int(t) for t in query["q-sign-time"].split(";"))
    assert end - start == 60 + 3600
    tampered = url.split("?", 1)[0] + "?" + urlencode({**query, "q-signature": "f" * 40})
    assert requests.get(tampered).status_code == 403


def test_foreign_urls_are_not_ours(cos: RunningCos) -> None:
    storage = storage_for(cos, private=False)
    for url in (
        "https://evil.example/results/a.png",
        f"{cos.endpoint_url}/",
        f"{cos.endpoint_url}0/a.png",
        f"https://{cos.endpoint_url[len('http://') :]}/a.png",
    ):
        assert storage.key_for_url(url) is None


def test_bucket_domain_is_the_base_without_an_endpoint() -> None:
    base = cos_base_url(bucket="photos-1250000000", region="ap-shanghai")
    assert base == "https://photos-1250000000.cos.ap-shanghai.myqcloud.com"
    storage = CosStorage(
        client=cos_client(secret_id="AKID", secret_key="key", region="ap-shanghai"),
        bucket="photos-1250000000",
        base_url=base,
    )
    assert storage.url(key="a/b.jpg") == f"{base}/a/b.jpg"
    assert storage.key_for_url(f"{base}/a/b.jpg?q-sign-algorithm=sha1") == "a/b.jpg"


def test_from_settings_talks_to_the_configured_endpoint(cos: RunningCos, cos_settings: None) -> None:
    storage = CosStorage.from_settings()
    storage.save(key="s/a.txt", data=b"via settings", content_type="text/plain")
    url = storage.signed(storage.url(key="s/a.txt"))
    assert url.startswith(f"{cos.endpoint_url}/s/a.txt?q-sign-algorithm=sha1&")
    assert requests.get(url).content == b"via settings"


def test_missing_or_bad_settings_are_named(cos_settings: None) -> None:
    with override_settings(COS_BUCKET=""), pytest.raises(ImproperlyConfigured, match="COS_BUCKET"):
        CosStorage.from_settings()
    with (
        override_settings(COS_ENDPOINT_URL="127.0.0.1:9000"),
        pytest.raises(ImproperlyConfigured, match="COS_ENDPOINT_URL"),
    ):
        CosStorage.from_settings()


def test_sdk_errors_become_storage_errors(cos: RunningCos) -> None:
    storage = storage_for(cos, private=False)
    with pytest.raises(FileNotFoundError):
        storage.read(key="missing/object.png")
    cos.set_fault("error")
    with pytest.raises(StorageError):
        storage.save(key="a.png", data=b"x", content_type="image/png")
    cos.set_fault("refuse")
    with pytest.raises(StorageError):
        storage.read(key="a.png")
