"""Reads of tasks, each in one query with the refund from the ledger."""

from __future__ import annotations

import uuid

from django.db.models import IntegerField, OuterRef, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce

from accounts.models import User
from core import errors
from quota.models import LedgerKind, QuotaLedger
from tasks.models import Task, TaskStatus, TaskType


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
    *, user: User, limit: int, offset: int, status: TaskStatus | None = None, task_type: TaskType | None = None
) -> tuple[list[Task], int]:
    queryset = Task.objects.filter(user=user)
    if status:
        queryset = queryset.filter(status=status)
    if task_type:
        queryset = queryset.filter(type=task_type)
    total = queryset.count()
    page = list(with_refund(queryset.order_by("-created_at", "-id"))[offset : offset + limit]) if offset < total else []
    return page, total
