"""What people do to a task (tasks/actions.py): a member cancels it, staff force its status;
failing refunds once, and the history and the ledger name who did it."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from rest_framework.test import APIClient

from accounts.models import User
from accounts.tests.factories import balance, make_member, make_support
from core import errors
from core.tests.helpers import error_of
from quota.models import LedgerKind, QuotaLedger
from quota.selectors import quota_mismatches
from tasks.actions import task_refund_missing, task_retry
from tasks.models import FailureCode, Task, TaskEvent, TaskStatus
from tasks.tests.factories import broker, make_task, public_dns

pytestmark = pytest.mark.django_db

Client = Callable[[User], APIClient]


def test_cancel_fails_and_refunds_once(client_for: Client, member: User, own_task: dict[str, Any]) -> None:
    client = client_for(member)
    response = client.post(f"/api/task/{own_task['id']}/cancel")
    assert response.status_code == 200
    task = response.json()["data"]
    assert (task["status"], task["errorMessage"], task["quotaRefunded"]) == ("failed", "已取消", 1)
    assert balance(member) == 10
    again = client.post(f"/api/task/{own_task['id']}/cancel")
    assert error_of(again) == (409, 4005)
    assert again.json()["error"]["message"] == "任务状态不允许该操作"
    assert balance(member) == 10
    assert quota_mismatches() == []
    events = list(TaskEvent.objects.filter(task_id=own_task["id"]).values_list("from_status", "to_status", "reason"))
    assert events == [("pending", "failed", "已取消")]


def test_staff_status_update(client_for: Client, staff: User, member: User, own_task: dict[str, Any]) -> None:
    client = client_for(staff)
    url = f"/api/task/{own_task['id']}/status"
    assert client.put(url, {"status": "processing"}, format="json").json()["data"]["status"] == "processing"
    stored = "http://testserver/media/results/1/r.png"
    outside = client.put(url, {"status": "success", "resultUrls": ["https://cdn.example.com/r.png"]}, format="json")
    assert error_of(outside) == (400, 4002), "result URLs only on the product's own storage"
    done = client.put(url, {"status": "success", "resultUrls": [stored]}, format="json")
    assert done.status_code == 200
    assert done.json()["data"]["resultUrls"] == [stored]
    assert error_of(client.put(url, {"status": "failed"}, format="json")) == (409, 4005)
    assert balance(member) == 9
    event = TaskEvent.objects.filter(task_id=own_task["id"]).last()
    assert event is not None and event.actor == staff


def test_staff_start_records_the_staff_member(client_for: Client, staff: User, own_task: dict[str, Any]) -> None:
    client_for(staff).put(f"/api/task/{own_task['id']}/status", {"status": "processing"}, format="json")
    event = TaskEvent.objects.get(task_id=own_task["id"])
    assert (event.to_status, event.actor) == ("processing", staff)


def test_staff_fail_refunds(client_for: Client, staff: User, member: User, own_task: dict[str, Any]) -> None:
    url = f"/api/task/{own_task['id']}/status"
    response = client_for(staff).put(url, {"status": "failed", "errorMessage": "bad photo"}, format="json")
    assert response.json()["data"]["errorMessage"] == "bad photo"
    assert response.json()["data"]["quotaRefunded"] == 1
    assert balance(member) == 10


def test_refunds_record_who_caused_them(
    client_for: Client, staff: User, member: User, own_task: dict[str, Any]
) -> None:
    client_for(staff).put(f"/api/task/{own_task['id']}/status", {"status": "failed"}, format="json")
    refund = QuotaLedger.objects.get(task_id=own_task["id"], kind=LedgerKind.REFUND)
    assert refund.actor == staff


# --- a member's retry (SPEC §8) --------------------------------------------------------------------


def test_a_member_retries_a_failed_task_as_a_new_charged_task(client_for: Client, member: User) -> None:
    failed = make_task(member, TaskStatus.FAILED, failure_code=FailureCode.PROVIDER_FAILED)
    client = client_for(member)
    assert balance(member) == 10
    with public_dns(), broker():
        response = client.post(f"/api/task/{failed.pk}/retry")
    assert response.status_code == 201, response.content
    retry = response.json()["data"]
    assert (retry["retryOf"], retry["status"], retry["type"]) == (str(failed.pk), "pending", failed.type)
    assert retry["inputImageUrl"] == failed.input_image_url
    assert balance(member) == 9
    assert error_of(client.post(f"/api/task/{failed.pk}/retry")) == (409, 4005), "a task is retried once"
    assert quota_mismatches() == []


def test_only_a_failed_task_of_ones_own_can_be_retried(client_for: Client, member: User) -> None:
    client = client_for(member)
    assert error_of(client.post(f"/api/task/{make_task(member, TaskStatus.SUCCESS).pk}/retry")) == (409, 4005)
    assert error_of(client.post(f"/api/task/{make_task(member).pk}/retry")) == (409, 4005)
    stranger = make_task(make_member(), TaskStatus.FAILED)
    assert error_of(client.post(f"/api/task/{stranger.pk}/retry")) == (403, 4003)
    assert error_of(client.post("/api/task/not-a-task/retry")) == (404, 4004)
    assert balance(member) == 8, "the pending and the successful task made above; nothing by a retry"


def test_the_archive_is_for_successful_tasks_of_ones_own(client_for: Client, member: User) -> None:
    client = client_for(member)
    assert error_of(client.get(f"/api/task/{make_task(member, TaskStatus.FAILED).pk}/archive")) == (409, 4005)
    stranger = make_task(make_member(), TaskStatus.SUCCESS)
    assert error_of(client.get(f"/api/task/{stranger.pk}/archive")) == (403, 4003)


@pytest.mark.parametrize("action", [task_retry, task_refund_missing], ids=["retry", "refund_missing"])
def test_support_actions_on_a_task_that_does_not_exist_are_4004_and_write_nothing(action: Any) -> None:
    support = make_support()
    with pytest.raises(errors.TaskNotFound):
        action(task_id=uuid.uuid4(), actor=support)
    assert not QuotaLedger.objects.exists() and not Task.objects.exists() and not TaskEvent.objects.exists()
