from __future__ import annotations

import uuid
from typing import Any

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


def task_get(*, task_id: Any, user: User) -> Task:
    """The user's own task with its refund, in one query (4004 unknown or not a UUID, 4003 another's)."""
    try:
        pk = uuid.UUID(str(task_id))
    except ValueError:
        raise errors.TaskNotFound() from None
    # No ORDER BY: a primary-key look-up needs none (`.first()` would add one).
    task = next(iter(with_refund(Task.objects.filter(pk=pk))), None)
    if task is None:
        raise errors.TaskNotFound()
    if task.user_id != user.pk:
        raise errors.TaskForbidden()
    return task


def task_list(
    *, user: User, limit: int, offset: int, status: str | None = None, task_type: str | None = None
) -> tuple[list[Task], int]:
    if status is not None and status not in TaskStatus.values:
        raise errors.InvalidParams(fields={"status": [f"必须是 {' | '.join(TaskStatus.values)} 之一"]})
    if task_type is not None and task_type not in TaskType.values:
        raise errors.InvalidParams(fields={"type": [f"必须是 {' | '.join(TaskType.values)} 之一"]})
    queryset = Task.objects.filter(user=user)
    if status:
        queryset = queryset.filter(status=status)
    if task_type:
        queryset = queryset.filter(type=task_type)
    total = queryset.count()
    page = list(with_refund(queryset.order_by("-created_at", "-id"))[offset : offset + limit]) if offset < total else []
    return page, total
