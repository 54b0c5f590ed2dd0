"""Uploads for tests, made through the upload API as a member's app would."""

from __future__ import annotations

from typing import Any

from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from media.tests.images import product_photo


def upload(client: APIClient, data: bytes, name: str = "p.png", content_type: str = "image/png") -> Any:
    """POST /api/media/upload with `data` as the file; the response, whatever it is."""
    return client.post("/api/media/upload", {"file": SimpleUploadedFile(name, data, content_type)}, format="multipart")


def upload_photo(client: APIClient, data: bytes | None = None) -> str:
    """The URL of a product photo uploaded by the client's own user (tasks accept only own uploads)."""
    response = upload(client, product_photo() if data is None else data)
    assert response.status_code == 201, response.content
    return str(response.json()["data"]["url"])
