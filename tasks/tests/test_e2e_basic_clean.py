"""upload → create → a real Celery worker → success with three stored images, on PostgreSQL + Redis."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image
from rest_framework.test import APIClient

from accounts.models import User
from media.tests.images import product_photo
from quota.models import LedgerKind, QuotaLedger
from quota.selectors import quota_mismatches
from tasks.models import Task, TaskEvent
from tasks.tests.conftest import task_status, wait_for
from tasks.tests.factories import public_dns

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def test_basic_clean_end_to_end(worker: None, member: User, client_for: Callable[[User], APIClient]) -> None:
    client = client_for(member)
    upload = client.post(
        "/api/media/upload",
        {"file": SimpleUploadedFile("bottle.jpg", product_photo(fmt="JPEG"), "image/jpeg")},
        format="multipart",
    )
    assert upload.status_code == 201
    created = client.post(
        "/api/task/create", {"type": "basic_clean", "inputImageUrl": upload.json()["data"]["url"]}, format="json"
    )
    assert created.status_code == 201
    task_id = created.json()["data"]["id"]

    task = wait_for(task_status(client, task_id, "success", "failed"))
    assert task["status"] == "success", task
    assert task["startedAt"] and task["completedAt"]
    assert task["quotaCharged"] == 1 and task["quotaRefunded"] == 0
    assert len(task["resultUrls"]) == 3
    modes = []
    for url in task["resultUrls"]:
        assert url.startswith(f"http://testserver/media/results/{member.pk}/{task_id}/")
        served = client.get(url.removeprefix("http://testserver"))
        assert served.status_code == 200
        image = Image.open(io.BytesIO(b"".join(served.streaming_content)))  # type: ignore[attr-defined]
        image.load()
        modes.append(image.mode)
    assert modes == ["RGBA", "RGB", "RGB"]

    member.refresh_from_db()
    assert member.quota_remaining == 9
    assert list(QuotaLedger.objects.filter(task_id=task_id).values_list("kind", flat=True)) == [LedgerKind.DEDUCT]
    assert list(TaskEvent.objects.filter(task_id=task_id).values_list("to_status", flat=True)) == [
        "processing",
        "success",
    ]
    assert Task.objects.get(pk=task_id).audit == "skipped"
    assert quota_mismatches() == []


def test_undecodable_input_fails_and_refunds(
    worker: None, member: User, client_for: Callable[[User], APIClient], settings: Any
) -> None:
    """A user URL whose file turns out not to be an image fails once, with one refund."""
    from unittest import mock

    client = client_for(member)
    with public_dns():
        created = client.post(
            "/api/task/create",
            {"type": "basic_clean", "inputImageUrl": "https://images.example.com/x.png"},
            format="json",
        )
    task_id = created.json()["data"]["id"]
    with mock.patch("tasks.processing.fetch", return_value=b"not an image at all"):
        task = wait_for(task_status(client, task_id, "success", "failed"))
    assert task["status"] == "failed" and task["quotaRefunded"] == 1
    assert "图片" in task["errorMessage"]
    member.refresh_from_db()
    assert member.quota_remaining == 10
    assert quota_mismatches() == []
