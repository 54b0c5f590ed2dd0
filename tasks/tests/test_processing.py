"""What a worker does with a task (tasks/processing.py), one step at a time as the queued message
would run it: RunningHub is the simulator and COS the local COS server, both over HTTP; the broker
records what is queued."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest
from rest_framework.test import APIClient

from accounts.models import User
from devtools.cos_testing import RunningCos
from devtools.testing import SimulatorHandle
from media.tests.factories import upload_photo
from quota.models import LedgerKind, QuotaLedger
from tasks.creation import task_create
from tasks.models import FailureCode, Task, TaskStatus, TaskType
from tasks.processing import MAX_TRANSIENT_ERRORS, QUEUE_FULL_BACKOFF_STEPS, task_advance
from tasks.tests.factories import broker, make_stale_tasks

pytestmark = pytest.mark.django_db

Client = Callable[[User], APIClient]


def results_in(cos: RunningCos) -> list[str]:
    return [key for key in cos.keys() if key.startswith("results/")]  # noqa: SIM118 (a server handle, not a dict)


def refunds(task: Task) -> int:
    return QuotaLedger.objects.filter(task_id=task.pk, kind=LedgerKind.REFUND).count()


def order(user: User, task_type: TaskType, input_image_url: str) -> Task:
    with broker():
        return task_create(user=user, task_type=task_type, input_image_url=input_image_url, params={}).task


def step_is_retried(task: Task, caplog: pytest.LogCaptureFixture, reason: str) -> None:
    """One step that fails for a while: the error counted, the lease released, the next attempt
    queued."""
    with broker() as queued, caplog.at_level(logging.INFO, logger="tasks.processing"):
        task_advance(task_id=task.pk, token=None)
    assert f"will retry: {reason}" in caplog.text
    task.refresh_from_db()
    assert (task.status, task.transient_errors, task.lease_until) == (TaskStatus.PROCESSING, 1, None)
    assert queued.task_ids() == [str(task.pk)], "the next attempt is scheduled"


def next_attempt(task: Task) -> None:
    """The step run by the message the retry queued."""
    with broker():
        task_advance(task_id=task.pk, token=task.next_attempt_at)
    task.refresh_from_db()


def test_worker_fails_a_pending_task_past_its_timeout_instead_of_starting_it() -> None:
    [task] = make_stale_tasks(1)
    task_advance(task_id=task.pk, token=None)
    task.refresh_from_db()
    assert (task.status, task.error_message, task.started_at) == (TaskStatus.FAILED, "任务超时(10分钟未处理)", None)
    assert task.failure_code == FailureCode.TIMEOUT
    assert refunds(task) == 1


def test_a_long_queue_full_wait_leaves_the_error_budget_intact(
    sim: SimulatorHandle, member: User, uploaded: str, prompt_templates: None
) -> None:
    """After many 421s a task still survives a run of transient errors before it fails."""
    task = order(member, TaskType.MODEL_POSE12, uploaded)
    sim.configure(queue_full=20)
    with broker():
        for _ in range(20):
            task_advance(task_id=task.pk, token=None)
        sim.configure(http_5xx=MAX_TRANSIENT_ERRORS)
        for _ in range(MAX_TRANSIENT_ERRORS - 4):
            task_advance(task_id=task.pk, token=None)
        assert Task.objects.get(pk=task.pk).status == TaskStatus.PENDING
        for _ in range(4):
            task_advance(task_id=task.pk, token=None)
    task.refresh_from_db()
    assert task.status == TaskStatus.FAILED and task.error_message.startswith("处理失败")
    assert task.failure_code == FailureCode.RETRIES_EXHAUSTED
    assert refunds(task) == 1
    calls = sim.state()["calls"]
    assert calls["/task/openapi/upload"] == 1, "the photo is uploaded once, however long the wait"
    assert calls["/task/openapi/ai-app/run"] == 20 + MAX_TRANSIENT_ERRORS - QUEUE_FULL_BACKOFF_STEPS, (
        "the 421s raised the error count only to its cap, and no call was made once the task failed"
    )


def test_a_storage_outage_is_retried_not_left_stuck(
    cos_storage: RunningCos,
    sim: SimulatorHandle,
    member: User,
    prompt_templates: None,
    client_for: Client,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """COS answers 503 while the finished job's results are stored: the step is retried later
    (the lease released, the next attempt queued) and succeeds once COS is back."""
    sim.configure(run_time=0, webhook=False)
    task = order(member, TaskType.MODEL_POSE12, upload_photo(client_for(member)))
    with broker():
        task_advance(task_id=task.pk, token=None)
    assert Task.objects.get(pk=task.pk).status == TaskStatus.PROCESSING

    cos_storage.set_fault("error")
    step_is_retried(task, caplog, "保存结果失败")
    assert not results_in(cos_storage)

    cos_storage.set_fault("none")
    next_attempt(task)
    assert task.status == TaskStatus.SUCCESS and len(task.result_urls) == 12
    assert len(results_in(cos_storage)) == 12
    assert refunds(task) == 0


def test_results_are_deleted_while_the_audit_cannot_be_reached(
    cos_storage: RunningCos, member: User, client_for: Client, settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """Stored results the audit has not passed are not left behind: they are deleted, the step is
    retried, and a later attempt stores, audits and hands them out."""
    settings.AUDIT_BACKEND = "tencent_ci"
    task = order(member, TaskType.BASIC_CLEAN, upload_photo(client_for(member)))
    cos_storage.set_fault("error", "moderation")
    step_is_retried(task, caplog, "内容审核暂不可用")
    assert not results_in(cos_storage), "nothing unaudited is left behind"

    cos_storage.set_fault("none")
    next_attempt(task)
    assert (task.status, task.audit) == (TaskStatus.SUCCESS, "passed")
    assert len(results_in(cos_storage)) == 3
