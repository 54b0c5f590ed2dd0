"""Reads of tasks, each in one query with the refund from the ledger."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

from django.db import connection
from django.db.models import IntegerField, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce

from accounts.models import User
from core import errors
from quota.models import LedgerKind, QuotaLedger
from tasks.counters import task_count
from tasks.models import Task, TaskStatus, TaskType
from tasks.notify import POLL_SECONDS, task_watch


@dataclass(frozen=True)
class TaskPage:
    tasks: list[Task]
    total: int
    # The last task of the page when more follow: the `after` of the next page.
    next_after: uuid.UUID | None


def with_refund(queryset: QuerySet[Task]) -> QuerySet[Task]:
    """Annotates `quota_refunded` from the ledger (the one source of truth) in the same query."""
    # At most one refund row exists per task (unique constraint), so no ordering is needed.
    refund = QuotaLedger.objects.filter(task_id=OuterRef("pk"), kind=LedgerKind.REFUND).order_by().values("delta")[:1]
    return queryset.annotate(quota_refunded=Coalesce(Subquery(refund, output_field=IntegerField()), Value(0)))


def task_with_refund(*, task_id: uuid.UUID) -> Task:
    # No ORDER BY: a primary-key look-up needs none (`.first()` would add one).
    task = next(iter(with_refund(Task.objects.filter(pk=task_id))), None)
    if task is None:
        raise errors.TaskNotFound()
    return task


def task_get(*, task_id: uuid.UUID, user: User) -> Task:
    """The user's own task with its refund, in one query (4004 unknown, 4003 another's)."""
    task = task_with_refund(task_id=task_id)
    if task.user_id != user.pk:
        raise errors.TaskForbidden()
    return task


def task_list(
    *,
    user: User,
    limit: int,
    offset: int,
    status: TaskStatus | None = None,
    task_type: TaskType | None = None,
    after: uuid.UUID | None = None,
    batch_id: uuid.UUID | None = None,
) -> TaskPage:
    """A page of the member's tasks, newest first, in a fixed number of queries whatever the
    history: `total` sums the member's counters (tasks/counters.py), and `after` (a task id of an
    earlier page) starts the page just after that task through the (user, created_at) index, where
    a deep `offset` would walk past every skipped row."""
    queryset = Task.objects.filter(user=user)
    if status:
        queryset = queryset.filter(status=status)
    if task_type:
        queryset = queryset.filter(type=task_type)
    if after is not None:
        cursor = Task.objects.filter(pk=after, user=user).values_list("created_at", flat=True).first()
        if cursor is None:
            raise errors.InvalidParams(fields={"after": ["不是你的任务"]})
        # The redundant `created_at <= cursor` is what the (user, -created_at) index can start its
        # scan at; the OR alone is only a filter, read from the member's newest task on.
        queryset = queryset.filter(
            Q(created_at__lt=cursor) | Q(created_at=cursor, id__lt=after), created_at__lte=cursor
        )
    if batch_id is not None:
        queryset = queryset.filter(batch_id=batch_id)
    # A batch holds at most 50 tasks: counting them is cheap; the rest comes from the counters.
    total = (
        queryset.count() if batch_id is not None else task_count(user_id=user.pk, status=status, task_type=task_type)
    )
    # One row past the page tells whether another page follows, without counting.
    rows = list(with_refund(queryset.order_by("-created_at", "-id"))[offset : offset + limit + 1])
    page = rows[:limit]
    return TaskPage(tasks=page, total=total, next_after=page[-1].pk if len(rows) > limit else None)


def task_get_when_changed(*, task_id: uuid.UUID, user: User, wait: float) -> Task:
    """The member's task as soon as its status or stage differs from now, or after `wait` seconds
    as it is then. The request holds no database connection while it waits (tasks/notify.py)."""
    deadline = time.monotonic() + wait
    with task_watch(task_id) as changed:
        task = task_get(task_id=task_id, user=user)
        seen = (task.status, task.stage)
        while task.status in (TaskStatus.PENDING, TaskStatus.PROCESSING):
            connection.close()
            left = deadline - time.monotonic()
            if left <= 0:
                break
            if changed is None:
                time.sleep(min(POLL_SECONDS, left))
            elif not changed.wait(left):
                break
            else:
                changed.clear()
            task = task_get(task_id=task_id, user=user)
            if (task.status, task.stage) != seen:
                break
    return task
