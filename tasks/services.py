"""Task lifecycle: creation with its charge, guarded status transitions, refunds, the sweep.

Every transition locks the task row, so of several paths racing to change a task (worker, sweep,
cancel, staff) exactly one wins and terminal states never change. Failing refunds in the same
transaction; the ledger's unique constraint keeps that to once per task.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from accounts.models import User
from core import errors
from media.fetch import FetchError, check_user_url
from media.services import media_require_upload, upload_key_for_url
from quota.models import QuotaLedger
from quota.services import quota_deduct, quota_expire_lapsed, quota_refund
from tasks.models import ACTIVE_STATUSES, IdempotencyKey, Task, TaskEvent, TaskStatus, TaskType

logger = logging.getLogger(__name__)

IDEMPOTENCY_TTL = timedelta(hours=24)
CANCELLED = "已取消"
PROCESSING_TIMED_OUT = "处理超时"
AUDIT_BLOCKED = "内容审核未通过"
POSE12_CHOICES = {
    "scene": ("street", "studio", "indoor"),
    "category": ("shoes", "dress", "hoodie", "coat"),
}


def pending_timeout_message() -> str:
    return f"任务超时({settings.TASK_PENDING_TIMEOUT // 60}分钟未处理)"


# --- creation -----------------------------------------------------------------------------------


def _validated_params(task_type: str, params: Any) -> dict[str, str]:
    if params is None:
        params = {}
    if not isinstance(params, dict):
        raise errors.InvalidParams(fields={"params": ["必须是对象"]})
    if task_type == TaskType.BASIC_CLEAN:
        if params:
            raise errors.InvalidParams(fields={"params": [f"不支持的参数: {', '.join(sorted(map(str, params)))}"]})
        return {}
    unknown = set(params) - set(POSE12_CHOICES)
    if unknown:
        raise errors.InvalidParams(fields={"params": [f"不支持的参数: {', '.join(sorted(map(str, unknown)))}"]})
    clean = {"scene": params.get("scene", "street"), "category": params.get("category", "dress")}
    for name, allowed in POSE12_CHOICES.items():
        if clean[name] not in allowed:
            raise errors.InvalidParams(fields={f"params.{name}": [f"必须是 {' | '.join(allowed)} 之一"]})
    return clean


def _check_input_url(url: Any) -> None:
    if not isinstance(url, str) or not url or len(url) > 2048:
        raise errors.InvalidParams(fields={"inputImageUrl": ["必须是图片地址"]})
    upload_key = upload_key_for_url(url)
    if upload_key is not None:
        media_require_upload(key=upload_key)
        return
    try:
        check_user_url(url)
    except FetchError as exc:
        raise errors.InvalidParams(fields={"inputImageUrl": [str(exc)]}) from exc


def _request_hash(task_type: Any, input_image_url: Any, params: Any) -> str:
    canonical = json.dumps([task_type, input_image_url, params], sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class Created:
    task: Task
    replayed: bool


def _replay(*, user: User, key: str, request_hash: str) -> Created | None:
    existing = IdempotencyKey.objects.filter(user=user, key=key).first()
    if existing is None:
        return None
    if existing.created_at < timezone.now() - IDEMPOTENCY_TTL:
        existing.delete()
        return None
    if existing.request_hash != request_hash:
        raise errors.IdempotencyConflict()
    from tasks.selectors import with_refund

    return Created(task=with_refund(Task.objects.filter(pk=existing.task_id)).get(), replayed=True)


def task_create(
    *, user: User, task_type: Any, input_image_url: Any, params: Any, idempotency_key: str | None = None
) -> Created:
    """SPEC §4 "Create, in order": type → params → membership → input URL → charge and insert in
    one transaction → enqueue after commit."""
    request_hash = _request_hash(task_type, input_image_url, params)
    if idempotency_key:
        replay = _replay(user=user, key=idempotency_key, request_hash=request_hash)
        if replay is not None:
            return replay
    if task_type not in TaskType.values:
        raise errors.InvalidTaskType()
    clean_params = _validated_params(task_type, params)
    if not user.is_active_member:
        raise errors.MembershipRequired()
    _check_input_url(input_image_url)

    cost = settings.TASK_COSTS[task_type]
    now = timezone.now()
    task = Task(
        id=uuid.uuid4(),
        user=user,
        type=task_type,
        input_image_url=input_image_url,
        params=clean_params,
        cost=cost,
        next_attempt_at=now,
    )
    try:
        with transaction.atomic():
            if idempotency_key:
                # The key is claimed first (the task row follows in this transaction; the foreign key
                # is checked at commit): a concurrent request with the same key waits here for this
                # one to commit, then replays it, instead of being charged or refused for quota.
                IdempotencyKey.objects.create(
                    user=user, key=idempotency_key, request_hash=request_hash, task_id=task.id
                )
            quota_deduct(user_id=user.pk, amount=cost, task_id=task.id, reason=f"创建任务 {task_type}")
            task.save(force_insert=True)
            transaction.on_commit(lambda: enqueue_advance(task_id=task.id, due=now))
    except IntegrityError:
        # Only the idempotency key can collide: a concurrent request with the same key won.
        replay = _replay(user=user, key=idempotency_key or "", request_hash=request_hash) if idempotency_key else None
        if replay is None:
            raise
        return replay
    return Created(task=task, replayed=False)


def enqueue_advance(*, task_id: uuid.UUID, due: datetime | None, countdown: float = 0) -> None:
    """Queue the next step for the step due at `due` (None: whatever is due, as for a webhook).
    A broker failure is logged, not raised: the sweep re-enqueues work whose due time has
    passed, so an outage delays tasks and loses none."""
    from tasks.tasks import advance

    try:
        advance.apply_async(args=(str(task_id), due.isoformat() if due else None), countdown=countdown)
    except Exception:
        logger.warning("could not enqueue task %s; the sweep will retry", task_id, exc_info=True)


# --- transitions --------------------------------------------------------------------------------


def _event(task: Task, from_status: str, *, actor: User | None, reason: str) -> None:
    TaskEvent.objects.create(
        task=task, from_status=from_status, to_status=task.status, actor=actor, reason=reason[:500]
    )


def _locked(task_id: uuid.UUID) -> Task:
    task = Task.objects.select_for_update().filter(pk=task_id).first()
    if task is None:
        raise errors.TaskNotFound()
    return task


def task_start(
    *,
    task_id: uuid.UUID,
    vendor_task_id: str | None = None,
    next_attempt_at: datetime | None = None,
    actor: User | None = None,
    reason: str = "开始处理",
) -> Task | None:
    """pending → processing (saving RunningHub's id in the same transaction). None if not pending."""
    with transaction.atomic():
        task = _locked(task_id)
        if task.status != TaskStatus.PENDING:
            return None
        task.status = TaskStatus.PROCESSING
        task.started_at = timezone.now()
        task.vendor_task_id = vendor_task_id or ""
        fields = ["status", "started_at", "vendor_task_id", "updated_at"]
        if next_attempt_at is not None:
            task.next_attempt_at, task.lease_until, task.transient_errors = next_attempt_at, None, 0
            fields += ["next_attempt_at", "lease_until", "transient_errors"]
        task.save(update_fields=fields)
        _event(task, TaskStatus.PENDING, actor=actor, reason=reason)
        return task


def task_succeed(
    *, task_id: uuid.UUID, result_urls: list[str], audit: str = "", actor: User | None = None, reason: str = ""
) -> Task | None:
    """processing → success. None when the task is no longer processing (someone else finished it)."""
    with transaction.atomic():
        task = _locked(task_id)
        if task.status != TaskStatus.PROCESSING:
            return None
        task.status = TaskStatus.SUCCESS
        task.result_urls = result_urls
        task.audit = audit
        task.completed_at = timezone.now()
        task.lease_until = task.next_attempt_at = None
        task.save(
            update_fields=[
                "status",
                "result_urls",
                "audit",
                "completed_at",
                "lease_until",
                "next_attempt_at",
                "updated_at",
            ]
        )
        _event(task, TaskStatus.PROCESSING, actor=actor, reason=reason or "处理完成")
        return task


def task_fail(
    *,
    task_id: uuid.UUID,
    reason: str,
    actor: User | None = None,
    from_statuses: tuple[str, ...] = ACTIVE_STATUSES,
    cancel_vendor: bool = True,
) -> Task | None:
    """→ failed, refunding the charge in the same transaction. None when the task was not in
    `from_statuses` (already finished, or moved on). A RunningHub job still running is cancelled
    after commit."""
    with transaction.atomic():
        task = _locked(task_id)
        if task.status not in from_statuses:
            return None
        previous = task.status
        task.status = TaskStatus.FAILED
        task.error_message = reason[:500]
        task.completed_at = timezone.now()
        task.lease_until = task.next_attempt_at = None
        task.save(
            update_fields=["status", "error_message", "completed_at", "lease_until", "next_attempt_at", "updated_at"]
        )
        _event(task, previous, actor=actor, reason=reason)
        quota_refund(
            user_id=task.user_id, amount=task.cost, task_id=task.id, reason=f"任务失败: {reason}"[:255], actor=actor
        )
        if cancel_vendor and previous == TaskStatus.PROCESSING and task.vendor_task_id:
            vendor_id = task.vendor_task_id
            transaction.on_commit(lambda: _enqueue_vendor_cancel(vendor_id))
        return task


def _enqueue_vendor_cancel(vendor_task_id: str) -> None:
    from tasks.tasks import cancel_vendor_task

    try:
        cancel_vendor_task.delay(vendor_task_id)
    except Exception:
        logger.warning("could not enqueue the RunningHub cancel of %s", vendor_task_id, exc_info=True)


def task_cancel(*, task_id: Any, user: User) -> Task:
    from tasks.selectors import task_get

    task = task_get(task_id=task_id, user=user)
    failed = task_fail(task_id=task.id, reason=CANCELLED, actor=user)
    if failed is None:
        raise errors.InvalidTransition()
    return failed


STAFF_TRANSITIONS = {
    (TaskStatus.PENDING, TaskStatus.PROCESSING),
    (TaskStatus.PENDING, TaskStatus.FAILED),
    (TaskStatus.PROCESSING, TaskStatus.SUCCESS),
    (TaskStatus.PROCESSING, TaskStatus.FAILED),
}


def task_update_status(
    *, task_id: Any, status: Any, actor: User, result_urls: Any = None, error_message: Any = None
) -> Task:
    """Staff override through the same guarded transitions (failing refunds like any failure)."""
    try:
        pk = uuid.UUID(str(task_id))
    except ValueError:
        raise errors.TaskNotFound() from None
    if status not in TaskStatus.values:
        raise errors.InvalidParams(fields={"status": [f"必须是 {' | '.join(TaskStatus.values)} 之一"]})
    if result_urls is not None and (
        not isinstance(result_urls, list)
        or not all(isinstance(u, str) and u.startswith(("http://", "https://")) for u in result_urls)
    ):
        raise errors.InvalidParams(fields={"resultUrls": ["必须是 URL 列表"]})
    if error_message is not None and not isinstance(error_message, str):
        raise errors.InvalidParams(fields={"errorMessage": ["必须是字符串"]})
    current = Task.objects.filter(pk=pk).values_list("status", flat=True).first()
    if current is None:
        raise errors.TaskNotFound()
    if (current, status) not in STAFF_TRANSITIONS:
        raise errors.InvalidTransition()
    reason = f"管理员操作: {error_message or status}"
    changed: Task | None
    if status == TaskStatus.FAILED:
        changed = task_fail(task_id=pk, reason=error_message or "管理员标记失败", actor=actor, from_statuses=(current,))
    elif status == TaskStatus.PROCESSING:
        changed = task_start(task_id=pk, actor=actor, reason=reason)
    else:
        changed = task_succeed(task_id=pk, result_urls=result_urls or [], actor=actor, reason=reason)
    if changed is None:
        raise errors.InvalidTransition()
    return changed


# --- sweep --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SweepReport:
    failed_pending: int = 0
    failed_processing: int = 0
    requeued: int = 0
    quota_expired: int = 0
    idempotency_purged: int = 0

    @property
    def failed(self) -> int:
        return self.failed_pending + self.failed_processing


SWEEP_BATCH = 500
# A sweep stops picking up new work after this long; the next run (a minute later) goes on.
SWEEP_TIME_BUDGET_SECONDS = 40


def pending_cutoff(now: datetime) -> datetime:
    return now - timedelta(seconds=settings.TASK_PENDING_TIMEOUT)


def _processing_cutoff(now: datetime) -> datetime:
    return now - timedelta(seconds=settings.TASK_PROCESSING_TIMEOUT)


def _stale_pending(now: datetime) -> QuerySet[Task]:
    return Task.objects.filter(status=TaskStatus.PENDING, created_at__lt=pending_cutoff(now)).order_by("created_at")


def _stale_processing(now: datetime) -> QuerySet[Task]:
    return Task.objects.filter(status=TaskStatus.PROCESSING, started_at__lt=_processing_cutoff(now)).order_by(
        "started_at"
    )


def _oldest_first(queryset: QuerySet[Task], deadline: float) -> Iterator[uuid.UUID]:
    """Ids in batches, oldest first, until none is left or the time budget is spent. Tasks that
    stay (a finished RunningHub job being collected) are not offered twice."""
    offered: set[uuid.UUID] = set()
    while time.monotonic() < deadline:
        batch = [pk for pk in queryset.values_list("id", flat=True)[: SWEEP_BATCH + len(offered)] if pk not in offered]
        if not batch:
            return
        offered.update(batch)
        for pk in batch:
            if time.monotonic() >= deadline:
                return
            yield pk


def tasks_sweep(*, dry_run: bool = False) -> SweepReport:
    """Fails timed-out tasks (refunding them), restarts work whose queued message was lost, expires
    lapsed quota and forgets old idempotency keys. Two sweeps at once are harmless: every change
    is a guarded transition or a skip-locked update."""
    from tasks.processing import task_processing_timed_out

    now = timezone.now()
    if dry_run:
        return SweepReport(failed_pending=_stale_pending(now).count(), failed_processing=_stale_processing(now).count())
    deadline = time.monotonic() + SWEEP_TIME_BUDGET_SECONDS
    failed_pending = sum(
        task_fail(task_id=pk, reason=pending_timeout_message(), from_statuses=(TaskStatus.PENDING,)) is not None
        for pk in _oldest_first(_stale_pending(now), deadline)
    )
    failed_processing = sum(
        task_processing_timed_out(task_id=pk) for pk in _oldest_first(_stale_processing(now), deadline)
    )
    return SweepReport(
        failed_pending=failed_pending,
        failed_processing=failed_processing,
        requeued=_requeue_overdue(now),
        quota_expired=quota_expire_lapsed(),
        idempotency_purged=IdempotencyKey.objects.filter(created_at__lt=now - IDEMPOTENCY_TTL).delete()[0],
    )


REQUEUE_GRACE = timedelta(seconds=60)


def _requeue_overdue(now: datetime) -> int:
    """Active tasks whose next step is more than a minute overdue and that no worker holds, except
    those past their timeout (the next sweep fails them instead)."""
    with transaction.atomic():
        overdue = list(
            Task.objects.select_for_update(skip_locked=True)
            .filter(status__in=ACTIVE_STATUSES, next_attempt_at__lt=now - REQUEUE_GRACE)
            .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now))
            .exclude(status=TaskStatus.PENDING, created_at__lt=pending_cutoff(now))
            .exclude(status=TaskStatus.PROCESSING, started_at__lt=_processing_cutoff(now))
            .order_by("next_attempt_at")
            .values_list("id", flat=True)[:SWEEP_BATCH]
        )
        if overdue:
            Task.objects.filter(pk__in=overdue).update(next_attempt_at=now, lease_until=None)
            for pk in overdue:
                transaction.on_commit(lambda pk=pk: enqueue_advance(task_id=pk, due=now))  # type: ignore[misc]
    return len(overdue)


# --- support actions ----------------------------------------------------------------------------


def stuck_condition(*, now: datetime) -> Q:
    """Active tasks past their timeout: what the sweep will fail, and what support may retry."""
    return Q(status=TaskStatus.PENDING, created_at__lt=now - timedelta(seconds=settings.TASK_PENDING_TIMEOUT)) | Q(
        status=TaskStatus.PROCESSING, started_at__lt=now - timedelta(seconds=settings.TASK_PROCESSING_TIMEOUT)
    )


RETRY_FAIL_REASON = "卡住,由客服重试"


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
        original = _locked(task_id)
        if original.status == TaskStatus.SUCCESS:
            raise errors.InvalidTransition("成功的任务不能重试", "A successful task cannot be retried")
        if original.status in ACTIVE_STATUSES:
            if not Task.objects.filter(stuck_condition(now=now), pk=original.pk).exists():
                raise errors.InvalidTransition("任务仍在正常处理中,不能重试", "The task is still within its timeout")
            task_fail(task_id=original.pk, reason=RETRY_FAIL_REASON, actor=actor, from_statuses=(original.status,))
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
        TaskEvent.objects.create(
            task=retry, from_status="", to_status=TaskStatus.PENDING, actor=actor, reason=f"重试自任务 {original.pk}"
        )
        transaction.on_commit(lambda: enqueue_advance(task_id=retry.id, due=now))
    return retry


def task_refund_missing(*, task_id: uuid.UUID, actor: User) -> QuotaLedger:
    """Refund a failed task whose charge was never given back. The ledger's one-refund-per-task
    constraint decides, so a task already refunded (or refunded concurrently) is refused."""
    with transaction.atomic():
        task = _locked(task_id)
        if task.status != TaskStatus.FAILED:
            raise errors.InvalidTransition("只有失败的任务可以补退", "Only a failed task can be refunded")
        row = quota_refund(
            user_id=task.user_id, amount=task.cost, task_id=task.pk, reason=f"客服补退 ({actor.username})", actor=actor
        )
    if row is None:
        raise errors.InvalidTransition("该任务已退还过配额", "The task was already refunded")
    return row
