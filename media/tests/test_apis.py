"""POST /api/media/upload: what is accepted and stored, and what is refused (SPEC §4)."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import pytest
from PIL import Image
from rest_framework.test import APIClient

from accounts.models import User
from accounts.tests.factories import make_member
from core.tests.helpers import error_of
from media.tests.factories import upload
from media.tests.images import product_photo

pytestmark = pytest.mark.django_db

Client = Callable[[User], APIClient]


@pytest.mark.parametrize("fmt,content_type", [("PNG", "image/png"), ("JPEG", "image/jpeg"), ("WEBP", "image/webp")])
def test_upload_accepts_jpeg_png_webp(client_for: Client, member: User, fmt: str, content_type: str) -> None:
    data = product_photo(fmt=fmt)
    response = upload(client_for(member), data)
    assert response.status_code == 201
    body = response.json()["data"]
    assert (body["contentType"], body["width"], body["height"]) == (content_type, 320, 240)
    assert body["url"].startswith("http://testserver/media/uploads/") and body["key"].startswith("uploads/")
    served = b"".join(client_for(member).get(body["url"].removeprefix("http://testserver")).streaming_content)  # type: ignore[attr-defined]
    assert body["size"] == len(served), "the stored file is the re-encoded photo the answer describes"
    assert Image.open(io.BytesIO(served)).format == fmt


def test_upload_refuses_non_images_and_gif_and_bombs(client_for: Client, member: User) -> None:
    client = client_for(member)
    assert error_of(upload(client, b"%PDF-1.4 not an image")) == (400, 4002)
    gif = io.BytesIO()
    Image.new("RGB", (10, 10)).save(gif, "GIF")
    assert error_of(upload(client, gif.getvalue(), "a.gif", "image/gif")) == (400, 4002)
    bomb = io.BytesIO()
    Image.new("1", (8000, 6000)).save(bomb, "PNG")  # 48 MP in a few kilobytes
    response = upload(client, bomb.getvalue())
    assert error_of(response) == (400, 4002)
    truncated = io.BytesIO()
    Image.new("RGB", (200, 200), "red").save(truncated, "JPEG")
    assert error_of(upload(client, truncated.getvalue()[:300])) == (400, 4002)
    assert error_of(client.post("/api/media/upload", {}, format="multipart")) == (400, 4002)


def test_upload_refuses_more_than_20_mb(client_for: Client, member: User, settings: Any) -> None:
    settings.UPLOAD_MAX_BYTES = 1000
    assert error_of(upload(client_for(member), product_photo(size=(400, 400)))) == (400, 4002)


def test_upload_with_an_oversized_declared_body_is_refused_early(client_for: Client, member: User) -> None:
    response = client_for(member).post(
        "/api/media/upload", b"x", content_type="multipart/form-data; boundary=zz", CONTENT_LENGTH=str(30 * 1024 * 1024)
    )
    assert error_of(response) == (413, 4002)


def test_upload_needs_login(api: APIClient) -> None:
    assert error_of(upload(api, b"x")) == (401, 1001)


def test_uploads_are_throttled_per_user(client_for: Client, member: User, monkeypatch: pytest.MonkeyPatch) -> None:
    from rest_framework.throttling import SimpleRateThrottle

    monkeypatch.setattr(SimpleRateThrottle, "THROTTLE_RATES", {**SimpleRateThrottle.THROTTLE_RATES, "upload": "2/min"})
    other = make_member()
    photo = product_photo()
    mine = [upload(client_for(member), photo).status_code for _ in range(2)]
    limited = upload(client_for(member), photo)
    others = [upload(client_for(other), photo).status_code for _ in range(2)]
    assert mine == [201, 201] and others == [201, 201], "one member's uploads do not use up another's"
    assert error_of(limited) == (429, 4029)
    assert 1 <= int(limited["Retry-After"]) <= 60
    assert error_of(upload(client_for(other), photo)) == (429, 4029)
