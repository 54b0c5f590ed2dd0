"""The Celery entry points (tasks/tasks.py): the RunningHub cancel retries what may pass and drops
what never will; a broker outage when queuing it loses nothing else; the sweep runs on a real
worker."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import pytest

from devtools.testing import SimulatorHandle
from quota.selectors import quota_mismatches
from tasks.lifecycle import task_fail
from tasks.models import FailureCode, Task, TaskStatus, TaskType
from tasks.tasks import cancel_vendor_task
from tasks.tests.conftest import wait_for
from tasks.tests.factories import broker, make_stale_tasks, make_task

pytestmark = pytest.mark.django_db


def running_job(sim: SimulatorHandle) -> str:
    """A job RunningHub is running."""
    from aimodel.engines import runninghub_client

    sim.configure(never_finish=True, webhook=False)
    client = runninghub_client()
    name = client.upload_image(data=b"\x89PNG\r\n\x1a\n", filename="a.png", content_type="image/png")
    return client.run_app(
        webapp_id="1937084629516193794",
        node_info_list=[
            {"nodeId": "103", "fieldName": "text", "fieldValue": "p"},
            {"nodeId": "74", "fieldName": "image", "fieldValue": name},
        ],
    )


def test_the_cancel_is_retried_through_transient_errors(sim: SimulatorHandle) -> None:
    job = running_job(sim)
    sim.configure(http_5xx=2)
    result = cancel_vendor_task.apply(args=(job,))
    assert result.successful(), result.traceback
    state = sim.state()
    assert state["calls"]["/task/openapi/cancel"] == 3, "two server errors, then the cancel that went through"
    assert job in state["cancelled"]


def test_a_final_error_ends_the_cancel_without_retrying(sim: SimulatorHandle, settings: Any) -> None:
    job = running_job(sim)
    from aimodel.engines import runninghub_client

    settings.RUNNINGHUB_API_KEY = "a-key-runninghub-refuses"
    runninghub_client.cache_clear()
    result = cancel_vendor_task.apply(args=(job,))
    assert result.successful(), result.traceback
    assert sim.state()["calls"]["/task/openapi/cancel"] == 1, "a final answer is not asked again"
    assert job not in sim.state()["cancelled"]


def test_a_broker_outage_when_queuing_the_cancel_still_fails_and_refunds(
    member: Any, caplog: pytest.LogCaptureFixture, django_capture_on_commit_callbacks: Any
) -> None:
    task = make_task(
        member, TaskStatus.PROCESSING, task_type=TaskType.MODEL_POSE12, vendor_task_id="1900000000000000001"
    )
    with (
        broker(down=True),
        caplog.at_level(logging.WARNING, logger="tasks.queue"),
        django_capture_on_commit_callbacks(execute=True),
    ):
        failed = task_fail(task_id=task.pk, code=FailureCode.CANCELLED, actor=member)
    assert failed is not None and failed.status == TaskStatus.FAILED
    assert "could not enqueue the RunningHub cancel of 1900000000000000001" in caplog.text
    assert quota_mismatches() == []


@pytest.mark.django_db(transaction=True)
@pytest.mark.slow
def test_the_sweep_runs_on_a_real_worker(worker: None) -> None:
    from config.celery import app
    from tasks.queue import SWEEP

    [stale] = make_stale_tasks(1, age=timedelta(hours=1))
    app.send_task(SWEEP)
    wait_for(lambda: Task.objects.get(pk=stale.pk).status == TaskStatus.FAILED, timeout=30)
    stale.refresh_from_db()
    assert stale.failure_code == FailureCode.TIMEOUT
    assert quota_mismatches() == []
