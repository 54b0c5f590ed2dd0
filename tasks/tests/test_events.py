"""Business events and the request id across web and worker: one request's id is on every line
of that request and of every worker step of the task it created (RunningHub polls included), with
the task id, the user id and the Celery task id; the lifecycle events carry their fields."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from accounts.models import User
from core.tests.logs import captured_log_lines
from devtools.testing import SimulatorHandle
from media.tests.factories import upload_photo
from quota.services import quota_adjust, quota_grant
from tasks.tests.conftest import task_status, wait_for
from tasks.tests.factories import post_create

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def _events(records: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [r for r in records if r.get("event") == name]


def test_one_request_id_through_the_web_and_the_worker_steps_of_its_task(
    worker: None, sim: SimulatorHandle, member: User, pose12_client: APIClient
) -> None:
    sim.configure(run_time=1.5)
    client = pose12_client
    body = {"type": "model_pose12", "inputImageUrl": upload_photo(client)}
    with captured_log_lines() as logs:
        created = post_create(client, body, HTTP_X_REQUEST_ID="order-7f3a")
        assert created.status_code == 201, created.content
        assert created["X-Request-ID"] == "order-7f3a"
        task_id = created.json()["data"]["id"]
        wait_for(task_status(client, task_id, "success"), timeout=60)
    records = logs.records()

    web = [r for r in records if r.get("request_id") == "order-7f3a" and "celery_task_id" not in r]
    assert {"request_started", "task.created", "request_finished"} <= {r["event"] for r in web}
    (created_event,) = _events(records, "task.created")
    assert created_event["request_id"] == "order-7f3a"
    expected = {"task_id": task_id, "user_id": member.pk, "type": "model_pose12", "cost": 1}
    assert created_event | expected == created_event

    steps = [r for r in records if r.get("celery_task") == "tasks.advance"]
    step_ids = {r["celery_task_id"] for r in steps}
    assert len(step_ids) >= 3, "submit, at least one poll, collect"  # re-queued steps keep the id
    assert {r.get("request_id") for r in steps} == {"order-7f3a"}
    bound = [r for r in steps if "task_id" in r]
    assert bound and {(r["task_id"], r["user_id"]) for r in bound} == {(task_id, member.pk)}

    (started,) = _events(records, "task.started")
    (succeeded,) = _events(records, "task.succeeded")
    for event in (started, succeeded):
        assert event["request_id"] == "order-7f3a" and event["celery_task_id"] in step_ids
    assert succeeded["result_count"] == 12 and succeeded["duration_seconds"] > 0
    calls = _events(records, "runninghub.call")
    endpoints = {"/task/openapi/upload", "/task/openapi/ai-app/run", "/task/openapi/outputs"}
    assert {c["endpoint"] for c in calls} >= endpoints
    assert all(c["request_id"] == "order-7f3a" and c["latency_ms"] >= 0 and c["code"] for c in calls)
    (audit,) = _events(records, "audit.verdicts")
    assert audit["verdicts"] == ["skipped"] * 12 and audit["blocked"] == 0


def test_a_failed_task_logs_its_failure_code_and_its_refund(
    worker: None, sim: SimulatorHandle, member: User, pose12_client: APIClient
) -> None:
    sim.configure(run_time=0.3, fail=True)
    client = pose12_client
    with captured_log_lines() as logs:
        created = post_create(client, {"type": "model_pose12", "inputImageUrl": upload_photo(client)})
        task_id = created.json()["data"]["id"]
        wait_for(task_status(client, task_id, "failed"), timeout=60)
    records = logs.records()
    (failed,) = _events(records, "task.failed")
    assert failed | {"task_id": task_id, "type": "model_pose12", "failure_code": "provider_failed"} == failed
    assert failed["request_id"] == created["X-Request-ID"]
    (refund,) = _events(records, "quota.refund")
    assert refund | {"task_id": task_id, "user_id": member.pk, "delta": 1} == refund


def test_quota_grants_and_adjustments_are_logged_with_the_staff_member(member: User, staff: User) -> None:
    with captured_log_lines() as logs:
        quota_grant(user_id=member.pk, amount=5, days=30, reason="续费", actor=staff)
        quota_adjust(user_id=member.pk, delta=-2, reason="客服更正", actor=staff)
    (grant,) = _events(logs.records(), "quota.grant")
    (adjust,) = _events(logs.records(), "quota.adjust")
    assert grant | {"user_id": member.pk, "delta": 5, "actor_id": staff.pk} == grant
    assert adjust | {"user_id": member.pk, "delta": -2, "actor_id": staff.pk, "reason": "客服更正"} == adjust
