"""upload → create → a real Celery worker → success with three stored images, on PostgreSQL + Redis."""

from __future__ import annotations

import io
from collections.abc import Callable

import pytest
from PIL import Image
from rest_framework.test import APIClient

from accounts.models import User
from accounts.tests.factories import balance
from media.storage import get_storage
from media.tests.factories import upload
from media.tests.images import product_photo
from quota.models import LedgerKind, QuotaLedger
from quota.selectors import quota_mismatches
from tasks.models import Task, TaskEvent
from tasks.tests.conftest import task_status, wait_for
from tasks.tests.factories import post_create

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def test_basic_clean_end_to_end(worker: None, member: User, client_for: Callable[[User], APIClient]) -> None:
    client = client_for(member)
    uploaded = upload(client, product_photo(fmt="JPEG"), "bottle.jpg", "image/jpeg")
    assert uploaded.status_code == 201
    created = post_create(client, {"type": "basic_clean", "inputImageUrl": uploaded.json()["data"]["url"]})
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
    history = list(TaskEvent.objects.filter(task_id=task_id).values_list("to_status", "stage"))
    assert history == [("processing", "running"), ("processing", "auditing"), ("success", "done")], (
        "each status and stage change is in the history"
    )
    assert Task.objects.get(pk=task_id).audit == "skipped"
    assert quota_mismatches() == []


def test_undecodable_input_fails_and_refunds(
    worker: None, member: User, client_for: Callable[[User], APIClient]
) -> None:
    """An input whose file turns out not to be an image (an upload damaged in storage after it
    was checked) fails once, with one refund."""
    client = client_for(member)
    uploaded = upload(client, product_photo()).json()["data"]
    get_storage().save(key=uploaded["key"], data=b"not an image at all", content_type="image/png")
    created = post_create(client, {"type": "basic_clean", "inputImageUrl": uploaded["url"]})
    task = wait_for(task_status(client, created.json()["data"]["id"], "success", "failed"))
    assert (task["status"], task["failureCode"], task["quotaRefunded"]) == ("failed", "provider_failed", 1)
    assert task["errorMessage"] == "图片无效: 仅支持 JPEG、PNG、WebP 图片", "the input check failed it, not the engine"
    assert balance(member) == 10
    assert quota_mismatches() == []
