"""The task API over HTTP (tasks/apis.py): the answer's shape, login, permissions, throttling,
ids in paths and the query budget of ordering. The rules behind each endpoint are tested in the
module that owns them (test_creation, test_serializers, test_selectors, test_actions)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any
from unittest import mock

import pytest
from rest_framework.test import APIClient

from accounts.models import User
from accounts.tests.factories import balance, make_member, make_user
from core.tests.helpers import error_of
from media.tests.factories import upload_photo
from quota.models import LedgerKind, QuotaLedger
from tasks.models import Task, TaskType
from tasks.tests.factories import broker, make_task, post_create

pytestmark = pytest.mark.django_db

Client = Callable[[User], APIClient]


def test_create_basic_clean_charges_and_answers_task_json(client_for: Client, member: User, uploaded: str) -> None:
    response = post_create(client_for(member), {"type": "basic_clean", "inputImageUrl": uploaded})
    assert response.status_code == 201, response.content
    task = response.json()["data"]
    assert set(task) == {
        "id", "type", "status", "inputImageUrl", "params", "resultUrls", "errorMessage", "failureCode", "createdAt",
        "updatedAt", "startedAt", "completedAt", "quotaCharged", "quotaRefunded", "stage", "queuePosition",
        "estimatedStartAt", "estimatedDoneAt", "batchId", "retryOf",
    }  # fmt: skip
    assert (task["stage"], task["queuePosition"], task["batchId"], task["retryOf"]) == ("queued", None, None, None)
    assert task["status"] == "pending" and task["type"] == "basic_clean"
    assert task["quotaCharged"] == 1 and task["quotaRefunded"] == 0
    assert task["createdAt"].endswith("+00:00")
    assert balance(member) == 9
    ledger = QuotaLedger.objects.get(task_id=task["id"])
    assert (ledger.kind, ledger.delta) == (LedgerKind.DEDUCT, -1)


def test_malformed_body_is_4002(client_for: Client, member: User) -> None:
    client = client_for(member)
    assert error_of(client.post("/api/task/create", "{nope", content_type="application/json")) == (400, 4002)
    assert error_of(client.post("/api/task/create", "[1, 2]", content_type="application/json")) == (400, 4002)


def test_create_needs_login(api: APIClient) -> None:
    assert error_of(post_create(api, {"type": "basic_clean"})) == (401, 1001)


def test_create_is_throttled_per_user(client_for: Client, member: User, uploaded: str) -> None:
    from rest_framework.throttling import SimpleRateThrottle

    other = make_member()
    others_upload = upload_photo(client_for(other))
    with mock.patch.object(
        SimpleRateThrottle, "THROTTLE_RATES", {**SimpleRateThrottle.THROTTLE_RATES, "task_create": "2/min"}
    ):
        client = client_for(member)
        body = {"type": "basic_clean", "inputImageUrl": uploaded}
        statuses = [post_create(client, body).status_code for _ in range(2)]
        limited = post_create(client, body)
        # One member's limit does not touch another's: the other member orders twice all the same.
        others = [
            post_create(client_for(other), {"type": "basic_clean", "inputImageUrl": others_upload}).status_code
            for _ in range(2)
        ]
        others_third = post_create(client_for(other), {"type": "basic_clean", "inputImageUrl": others_upload})
    assert statuses == [201, 201]
    assert error_of(limited) == (429, 4029)
    assert 1 <= int(limited["Retry-After"]) <= 60, "a 2/min window ends within the minute"
    assert others == [201, 201]
    assert error_of(others_third) == (429, 4029)
    assert Task.objects.filter(user=member).count() == 2 and Task.objects.filter(user=other).count() == 2


@pytest.mark.django_db(transaction=True)
def test_create_query_count(client_for: Client, member: User, uploaded: str, assert_max_statements: Any) -> None:
    client = client_for(member)
    body = {"type": "basic_clean", "inputImageUrl": uploaded}
    # The user load of authentication, the upload check (one UPDATE, no storage round trip), the
    # charge (a conditional UPDATE of the balance) and its ledger row, the member's unfinished tasks
    # from the counters (the cap), the task insert and the counter upsert.
    with assert_max_statements(7):
        assert post_create(client, body).status_code == 201
    # An Idempotency-Key adds the replay look-up and the key's claim.
    with assert_max_statements(9):
        assert post_create(client, body, HTTP_IDEMPOTENCY_KEY="q-1").status_code == 201


def test_ids_that_are_not_uuids_name_no_task(client_for: Client, member: User) -> None:
    client = client_for(member)
    assert error_of(client.get("/api/task/not-a-uuid")) == (404, 4004)
    assert error_of(client.post("/api/task/not-a-uuid/cancel")) == (404, 4004)


def test_status_update_is_staff_only(client_for: Client, member: User, own_task: dict[str, Any]) -> None:
    response = client_for(member).put(f"/api/task/{own_task['id']}/status", {"status": "failed"}, format="json")
    assert error_of(response) == (403, 4003)
    assert response.json()["error"]["message"] == "无权限"
    staff_without_permission = client_for(make_user(is_staff=True))
    response = staff_without_permission.put(f"/api/task/{own_task['id']}/status", {"status": "failed"}, format="json")
    assert error_of(response) == (403, 4003), "is_staff alone does not carry the task-action permission"
    superuser = client_for(make_user(is_staff=True, is_superuser=True))
    assert error_of(superuser.put(f"/api/task/{uuid.uuid4()}/status", {"status": "failed"}, format="json")) == (
        404,
        4004,
    )


@pytest.mark.parametrize("known", ["unknown", "finished"])
def test_a_webhook_for_an_unknown_or_finished_task_is_received_and_wakes_nothing(
    api: APIClient, member: User, settings: Any, known: str
) -> None:
    vendor_id = "1900000000000000042"
    if known == "finished":
        done = make_task(member, "success", task_type=TaskType.MODEL_POSE12, vendor_task_id=vendor_id)
    body = {"taskId": vendor_id, "eventData": '{"code": 0, "data": []}'}
    with broker() as queued:
        response = api.post(f"/api/webhooks/runninghub?token={settings.RUNNINGHUB_WEBHOOK_SECRET}", body, format="json")
    assert response.status_code == 200 and response.json()["data"] == {"received": True}
    assert queued.sent == []
    if known == "finished":
        done_after = Task.objects.get(pk=done.pk)
        assert (done_after.status, done_after.result_urls, done_after.updated_at) == (
            "success",
            done.result_urls,
            done.updated_at,
        )
