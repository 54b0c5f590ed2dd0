"""Business events of the task lifecycle: one structured log line and one metric for each
transition, emitted once the transaction that made it commits (a rolled-back transition is neither
logged nor counted). The request id, user id and Celery task id come from the log context."""

from __future__ import annotations

from collections import Counter

import structlog
from django.db import transaction
from django.utils import timezone

from core.metrics import (
    SWEEP_DURATION,
    SWEEP_ITEMS,
    TASK_DURATION,
    TASKS_CREATED,
    TASKS_FAILED,
    TASKS_STARTED,
    TASKS_SUCCEEDED,
)
from tasks.models import Task

logger = structlog.get_logger("tasks.events")


def _seconds_since(task: Task) -> float:
    return round((timezone.now() - task.created_at).total_seconds(), 3) if task.created_at else 0.0


def task_created_event(*, task: Task) -> None:
    def emit() -> None:
        TASKS_CREATED.labels(task.type).inc()
        logger.info("task.created", task_id=str(task.pk), user_id=task.user_id, type=task.type, cost=task.cost)

    transaction.on_commit(emit)


def task_started_event(*, task: Task) -> None:
    def emit() -> None:
        TASKS_STARTED.labels(task.type).inc()
        logger.info(
            "task.started",
            task_id=str(task.pk),
            user_id=task.user_id,
            type=task.type,
            vendor_task_id=task.vendor_task_id or None,
            waited_seconds=_seconds_since(task),
        )

    transaction.on_commit(emit)


def task_succeeded_event(*, task: Task) -> None:
    def emit() -> None:
        duration = _seconds_since(task)
        TASKS_SUCCEEDED.labels(task.type).inc()
        TASK_DURATION.labels(task.type).observe(duration)
        logger.info(
            "task.succeeded",
            task_id=str(task.pk),
            user_id=task.user_id,
            type=task.type,
            duration_seconds=duration,
            result_count=len(task.result_urls or []),
            audit=task.audit,
        )

    transaction.on_commit(emit)


def task_failed_event(*, task: Task, from_status: str, actor_id: int | None, detail: str = "") -> None:
    """`detail` is the provider's or the exception's text (never shown to the member)."""

    def emit() -> None:
        TASKS_FAILED.labels(task.type, task.failure_code).inc()
        logger.info(
            "task.failed",
            task_id=str(task.pk),
            user_id=task.user_id,
            type=task.type,
            failure_code=task.failure_code,
            from_status=from_status,
            actor_id=actor_id,
            detail=detail[:500] or None,
            duration_seconds=_seconds_since(task),
        )

    transaction.on_commit(emit)


def tasks_failed_in_bulk_event(*, types: list[str], code: str, from_status: str) -> None:
    """The sweep fails timed-out tasks set-based: one line for the batch, the counters by type."""

    def emit() -> None:
        for task_type, count in Counter(types).items():
            TASKS_FAILED.labels(task_type, code).inc(count)
        logger.info("tasks.failed", count=len(types), failure_code=code, from_status=from_status)

    transaction.on_commit(emit)


def tasks_swept_event(*, counts: dict[str, int], seconds: float) -> None:
    SWEEP_DURATION.observe(seconds)
    for action, count in counts.items():
        if count:
            SWEEP_ITEMS.labels(action).inc(count)
    logger.info("tasks.swept", duration_seconds=round(seconds, 3), **counts)
