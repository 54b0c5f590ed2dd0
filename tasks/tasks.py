"""Celery entry points: thin wrappers that parse ids and call one service. Their names are the
ones `tasks/queue.py` sends."""

from __future__ import annotations

import uuid
from datetime import datetime

from celery import shared_task

from aimodel.engines import runninghub_client
from aimodel.runninghub import RunningHubFinalError, RunningHubTransientError
from tasks import queue
from tasks.dispatch import pose12_dispatch
from tasks.processing import task_advance
from tasks.sweep import tasks_sweep


@shared_task(name=queue.ADVANCE, acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def advance(task_id: str, due: str | None = None) -> None:
    task_advance(task_id=uuid.UUID(task_id), token=datetime.fromisoformat(due) if due else None)


@shared_task(name=queue.SWEEP, ignore_result=True)
def sweep() -> dict[str, int]:
    report = tasks_sweep()
    return {"failed": report.failed, "requeued": report.requeued, "quota_expired": report.quota_expired}


@shared_task(name=queue.DISPATCH, ignore_result=True)
def dispatch() -> None:
    pose12_dispatch()


@shared_task(
    name=queue.CANCEL_VENDOR_TASK,
    autoretry_for=(RunningHubTransientError,),
    retry_backoff=5,
    retry_backoff_max=60,
    max_retries=5,
    ignore_result=True,
)
def cancel_vendor_task(vendor_task_id: str) -> None:
    try:
        runninghub_client().cancel(task_id=vendor_task_id)
    except RunningHubFinalError:
        return
