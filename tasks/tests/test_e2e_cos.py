"""COS storage, the Tencent CI engine and the CI audit, end to end through the real SDK against the
local COS-compatible server."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from rest_framework.test import APIClient

from accounts.models import User
from devtools.cos_testing import RunningCos
from media.tests.factories import upload_photo
from quota.models import LedgerKind, QuotaLedger
from tasks.models import Task
from tasks.tests.conftest import task_status, wait_for
from tasks.tests.factories import post_create

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


@pytest.fixture
def ci(cos_storage: RunningCos, settings: Any) -> RunningCos:
    """Files on the local COS server, basic_clean and the audit by its CI; retries a second apart."""
    settings.BASIC_CLEAN_ENGINE = "tencent_ci"
    settings.AUDIT_BACKEND = "tencent_ci"
    settings.RUNNINGHUB_POLL_INTERVAL = 1
    return cos_storage


def _stored(cos: RunningCos, prefix: str) -> list[str]:
    return [k for k in cos.keys() if k.startswith(prefix)]  # noqa: SIM118 (a server handle, not a dict)


def order_basic_clean(client: APIClient) -> str:
    created = post_create(client, {"type": "basic_clean", "inputImageUrl": upload_photo(client)})
    assert created.status_code == 201, created.content
    return str(created.json()["data"]["id"])


def test_ci_engine_and_audit_pass(
    worker: None, ci: RunningCos, member: User, client_for: Callable[[User], APIClient]
) -> None:
    client = client_for(member)
    task_id = order_basic_clean(client)
    task = wait_for(task_status(client, task_id, "success", "failed"))
    assert task["status"] == "success", task
    assert all(url.startswith(ci.endpoint_url + "/results/") for url in task["resultUrls"])
    stored = _stored(ci, "results/")
    assert len(stored) == 3
    assert not _stored(ci, "work/"), "CI's temporary objects are cleaned up"


def test_audit_block_fails_deletes_results_and_refunds(
    worker: None, ci: RunningCos, member: User, client_for: Callable[[User], APIClient]
) -> None:
    ci.set_moderation(1, key_substring="results/", label="Porn", score=97)
    client = client_for(member)
    task_id = order_basic_clean(client)
    task = wait_for(task_status(client, task_id, "success", "failed"))
    assert (task["status"], task["errorMessage"], task["resultUrls"]) == ("failed", "内容审核未通过", [])
    assert not _stored(ci, "results/")
    assert QuotaLedger.objects.filter(task_id=task_id, kind=LedgerKind.REFUND).count() == 1
    member.refresh_from_db()
    assert member.quota_remaining == 10


def test_unreachable_audit_is_retried_never_passed(
    worker: None, ci: RunningCos, member: User, client_for: Callable[[User], APIClient]
) -> None:
    ci.set_fault("error", "moderation")
    client = client_for(member)
    task_id = order_basic_clean(client)

    def between_failed_audits() -> bool:
        task = Task.objects.filter(pk=task_id).values("transient_errors", "lease_until").get()
        return task["transient_errors"] >= 2 and task["lease_until"] is None

    # Twice the results were stored and the audit could not be reached; each time they went.
    wait_for(between_failed_audits, timeout=30, interval=0.05)
    assert _stored(ci, "results/") == [], "no unaudited result stays in the bucket during the outage"
    task = client.get(f"/api/task/{task_id}").json()["data"]
    assert (task["status"], task["resultUrls"]) == ("processing", [])
    ci.set_fault("none", "moderation")
    task = wait_for(task_status(client, task_id, "success", "failed"), timeout=30)
    assert task["status"] == "success", task
    assert len(_stored(ci, "results/")) == 3
