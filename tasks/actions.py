"""What people do to an existing task: a member cancels it; support staff force a status, retry
it or refund a charge that was never given back. All of it through the lifecycle's transitions."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.models import User
from core import errors
from quota.models import QuotaLedger
from quota.services import quota_deduct, quota_refund
from tasks.counters import task_counted
from tasks.creation import task_create
from tasks.events import task_created_event
from tasks.lifecycle import TRANSITIONS, task_event, task_fail, task_lock, task_start, task_succeed
from tasks.models import ACTIVE_STATUSES, FailureCode, Task, TaskStatus, TaskType
from tasks.queue import enqueue_advance
from tasks.selectors import task_get, task_with_refund

RETRY_FAIL_REASON = "卡住,由客服重试"


def task_cancel(*, task_id: uuid.UUID, user: User) -> Task:
    task = task_get(task_id=task_id, user=user)
    if task_fail(task_id=task.pk, code=FailureCode.CANCELLED, actor=user) is None:
        raise errors.InvalidTransition()
    return task_with_refund(task_id=task.pk)


def task_update_status(
    *,
    task_id: uuid.UUID,
    status: TaskStatus,
    actor: User,
    result_urls: list[str] | None = None,
    error_message: str | None = None,
) -> Task:
    """Staff override through the same guarded transitions (failing refunds like any failure)."""
    current = Task.objects.filter(pk=task_id).values_list("status", flat=True).first()
    if current is None:
        raise errors.TaskNotFound()
    if (current, status) not in TRANSITIONS:
        raise errors.InvalidTransition()
    reason = f"管理员操作: {error_message or status}"
    changed: Task | None
    if status == TaskStatus.FAILED:
        changed = task_fail(
            task_id=task_id,
            code=FailureCode.SUPPORT,
            message=error_message or "",
            actor=actor,
            from_statuses=(current,),
        )
    elif status == TaskStatus.PROCESSING:
        changed = task_start(task_id=task_id, actor=actor, reason=reason)
    else:
        changed = task_succeed(task_id=task_id, result_urls=result_urls or [], actor=actor, reason=reason)
    if changed is None:
        raise errors.InvalidTransition()
    return task_with_refund(task_id=task_id)


def task_retry(*, task_id: uuid.UUID, actor: User) -> Task:
    """Run a failed or stuck task again as a new task for the same member.

    The rule: a retry is charged like any new task, and only once the original's charge is back.
    A stuck task is failed first (which refunds it); a failed task that somehow kept its charge is
    refunded now; then the new task is charged through `quota_deduct` (so a lapsed membership or an
    empty balance refuses the retry). The member pays once for the work in the end, the ledger holds
    one deduct and at most one refund per task, and nothing is given for free. A task is retried
    at most once (`retry_of` is unique); a retry that fails can itself be retried. All of it is one
    transaction: a refused retry leaves the original as it was.
    """
    now = timezone.now()
    with transaction.atomic():
        original = task_lock(task_id=task_id)
        if original.status == TaskStatus.SUCCESS:
            raise errors.InvalidTransition("成功的任务不能重试", "A successful task cannot be retried")
        if original.status in ACTIVE_STATUSES:
            if not Task.objects.filter(pk=original.pk).stuck(now).exists():
                raise errors.InvalidTransition("任务仍在正常处理中,不能重试", "The task is still within its timeout")
            task_fail(
                task_id=original.pk,
                code=FailureCode.SUPPORT,
                message=RETRY_FAIL_REASON,
                actor=actor,
                from_statuses=(original.status,),
            )
        elif Task.objects.filter(retry_of=original).exists():
            raise errors.InvalidTransition("该任务已重试过", "The task was already retried")
        else:
            quota_refund(
                user_id=original.user_id,
                amount=original.cost,
                task_id=original.pk,
                reason=f"重试前补退 (客服 {actor.username})",
                actor=actor,
            )
        retry = Task(
            id=uuid.uuid4(),
            user_id=original.user_id,
            type=original.type,
            input_image_url=original.input_image_url,
            params=original.params,
            cost=settings.TASK_COSTS[original.type],
            retry_of=original,
            next_attempt_at=now,
        )
        quota_deduct(
            user_id=original.user_id, amount=retry.cost, task_id=retry.id, reason=f"重试任务 {original.pk}", actor=actor
        )
        retry.save(force_insert=True)
        task_created_event(task=retry)
        task_counted(user_id=retry.user_id, task_type=retry.type, from_status=None, to_status=TaskStatus.PENDING)
        task_event(task=retry, from_status="", actor=actor, reason=f"重试自任务 {original.pk}")
        transaction.on_commit(lambda: enqueue_advance(task_id=retry.id, task_type=retry.type, due=now))
    return retry


def task_refund_missing(*, task_id: uuid.UUID, actor: User) -> QuotaLedger:
    """Refund a failed task whose charge was never given back. The ledger's one-refund-per-task
    constraint decides, so a task already refunded (or refunded concurrently) is refused."""
    with transaction.atomic():
        task = task_lock(task_id=task_id)
        if task.status != TaskStatus.FAILED:
            raise errors.InvalidTransition("只有失败的任务可以补退", "Only a failed task can be refunded")
        row = quota_refund(
            user_id=task.user_id, amount=task.cost, task_id=task.pk, reason=f"客服补退 ({actor.username})", actor=actor
        )
    if row is None:
        raise errors.InvalidTransition("该任务已退还过配额", "The task was already refunded")
    return row


def task_member_retry(*, task_id: uuid.UUID, user: User, idempotency_key: str | None = None) -> Task:
    """A member orders a failed task of theirs again: a new task linked by `retry_of`, charged
    like any create (the support retry's rule of charging only once the original is refunded is
    moot here: a failed task was refunded when it failed). A task is retried at most once."""
    original = task_get(task_id=task_id, user=user)
    if original.status != TaskStatus.FAILED:
        raise errors.InvalidTransition("只有失败的任务可以重试", "Only a failed task can be retried")
    if Task.objects.filter(retry_of=original).exists():
        raise errors.InvalidTransition("该任务已重试过", "The task was already retried")
    created = task_create(
        user=user,
        task_type=TaskType(original.type),
        input_image_url=original.input_image_url,
        params=original.params,
        idempotency_key=idempotency_key,
        retry_of=original,
    )
    return task_with_refund(task_id=created.task.pk)
