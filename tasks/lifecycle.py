"""The task lifecycle: which transitions exist, how a worker claims and releases a task, and the
guarded writes that move a task between statuses.

Every transition locks the task row, so of several paths racing to change a task (worker, sweep,
cancel, staff) exactly one wins and terminal states never change. Failing refunds in the same
transaction; the ledger's unique constraint keeps that to once per task. The timeout and lease
conditions themselves are query conditions on `TaskQuerySet` (tasks/models.py).
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

from django.conf import settings
from django.db import DatabaseError, close_old_connections, connections, transaction
from django.db.models import F
from django.utils import timezone

from accounts.models import User
from core import errors
from quota.services import quota_refund
from tasks.counters import task_counted
from tasks.events import task_failed_event, task_started_event, task_succeeded_event
from tasks.models import ACTIVE_STATUSES, SLOT_STAGES, FailureCode, Task, TaskEvent, TaskStage, TaskStatus, TaskType
from tasks.notify import task_changed
from tasks.queue import enqueue_advance, enqueue_dispatch, enqueue_vendor_cancel

# The transitions that exist at all (SPEC §4); staff may force any of them.
TRANSITIONS = frozenset(
    {
        (TaskStatus.PENDING, TaskStatus.PROCESSING),
        (TaskStatus.PENDING, TaskStatus.FAILED),
        (TaskStatus.PROCESSING, TaskStatus.SUCCESS),
        (TaskStatus.PROCESSING, TaskStatus.FAILED),
    }
)

logger = logging.getLogger(__name__)

# A worker holds a claimed task this long, and renews the hold every LEASE_RENEW_EVERY while its
# step runs (task_lease_heartbeat): a crashed worker's task is free again within LEASE, however
# long a live worker's step takes.
LEASE = timedelta(seconds=30)
LEASE_RENEW_EVERY = LEASE / 3

# What a member reads for each failure code: fixed texts, never a provider's or an exception's.
MEMBER_MESSAGES = {
    FailureCode.PROCESSING_TIMEOUT: "处理超时",
    FailureCode.CANCELLED: "已取消",
    FailureCode.PROVIDER_FAILED: "生成失败,请稍后重试",
    FailureCode.AUDIT_BLOCKED: "内容审核未通过",
    FailureCode.INCOMPLETE_RESULTS: "生成结果不完整,已退还配额",
    FailureCode.RETRIES_EXHAUSTED: "处理失败,请稍后重试",
    FailureCode.SUPPORT: "客服已终止该任务",
}


def pending_timeout_message() -> str:
    timeout = settings.TASK_PENDING_TIMEOUT
    waited = f"{timeout // 60}分钟" if timeout >= 60 and timeout % 60 == 0 else f"{timeout}秒"
    return f"任务超时({waited}未处理)"


def member_message(code: FailureCode) -> str:
    return pending_timeout_message() if code == FailureCode.TIMEOUT else MEMBER_MESSAGES[code]


# --- claim and release (the worker's hold on a task) --------------------------------------------


def task_claim(*, task_id: uuid.UUID, token: datetime | None) -> Task | None:
    """Take the lease of an active task nobody holds. `token` is the due time the message was
    queued for: a stale duplicate message presents an old one and claims nothing. None (a webhook)
    takes over whatever is scheduled."""
    now = timezone.now()
    claimable = Task.objects.filter(pk=task_id).active().lease_free(now)
    if token is not None:
        claimable = claimable.filter(next_attempt_at=token)
    if claimable.update(lease_until=now + LEASE) == 0:
        return None
    return Task.objects.filter(pk=task_id).select_related("user").first()


class _LeaseHeartbeat(threading.Thread):
    """Renews the lease of `task` while its holder works; stops when the lease is no longer the
    one it renewed (released, finished or taken over). Renewal and release never interleave: the
    release stops the heartbeat first, under the same lock, so `task.lease_until` stays the token
    of the hold."""

    def __init__(self, task: Task) -> None:
        super().__init__(name=f"lease-{task.pk}", daemon=True)
        self.task = task
        self.lock = threading.Lock()
        self.stopped = threading.Event()

    def run(self) -> None:
        try:
            while not self.stopped.wait(LEASE_RENEW_EVERY.total_seconds()):
                with self.lock:
                    if self.stopped.is_set() or not self._renew():
                        return
        finally:
            # This thread's own connection (connections are per thread), opened by a renewal.
            connections.close_all()

    def _renew(self) -> bool:
        renewed = timezone.now() + LEASE
        try:
            held = Task.objects.filter(pk=self.task.pk, lease_until=self.task.lease_until).active()
            if held.update(lease_until=renewed) == 0:
                return False
        except DatabaseError:
            # The database is away: try again next beat; if it stays away the lease lapses and the
            # task is resumed elsewhere, which is what a lapsed lease is for.
            logger.warning("could not renew the lease of task %s", self.task.pk, exc_info=True)
            close_old_connections()
            return True
        self.task.lease_until = renewed
        return True

    def stop(self) -> None:
        with self.lock:
            self.stopped.set()
        if self is not threading.current_thread():
            self.join()


_heartbeats: dict[uuid.UUID, _LeaseHeartbeat] = {}


@contextmanager
def task_lease_heartbeat(task: Task) -> Iterator[None]:
    """Keep the claimed `task` held while the body runs (its lease renewed every
    LEASE_RENEW_EVERY), so the lease can be short: a killed worker's task is free again in LEASE."""
    heartbeat = _LeaseHeartbeat(task)
    _heartbeats[task.pk] = heartbeat
    heartbeat.start()
    try:
        yield
    finally:
        _stop_heartbeat(task)


def _stop_heartbeat(task: Task) -> None:
    heartbeat = _heartbeats.pop(task.pk, None)
    if heartbeat is not None:
        heartbeat.stop()


def task_release(*, task: Task, delay: float, error: bool | None) -> None:
    """Schedule the next step `delay` seconds from now, if this worker still holds the lease.
    error=True counts a transient failure, False resets the count, None leaves it."""
    _stop_heartbeat(task)
    due = timezone.now() + timedelta(seconds=delay)
    changes: dict[str, object] = {"next_attempt_at": due, "lease_until": None}
    if error is True:
        changes["transient_errors"] = F("transient_errors") + 1
    elif error is False:
        changes["transient_errors"] = 0
    held = Task.objects.filter(pk=task.pk, lease_until=task.lease_until).active().update(**changes)
    if held:
        enqueue_advance(task_id=task.pk, task_type=task.type, due=due, countdown=delay)


def task_wake(*, task_id: uuid.UUID, task_type: str, now: datetime) -> bool:
    """Make an idle processing task due now and queue it (the sweep found its job finished)."""
    idle = Task.objects.filter(pk=task_id, status=TaskStatus.PROCESSING).lease_free(now)
    if idle.update(next_attempt_at=now, lease_until=None) == 0:
        return False
    enqueue_advance(task_id=task_id, task_type=task_type, due=now)
    return True


# --- transitions --------------------------------------------------------------------------------


def task_event(*, task: Task, from_status: str, actor: User | None, reason: str) -> TaskEvent:
    """One row of the status history (status and stage as they are now), and a wake-up for the
    requests long-polling the task once the transaction commits."""
    task_id = task.pk
    transaction.on_commit(lambda: task_changed(task_id))
    return TaskEvent.objects.create(
        task=task, from_status=from_status, to_status=task.status, stage=task.stage, actor=actor, reason=reason[:500]
    )


def task_set_stage(*, task_id: uuid.UUID, stage: TaskStage, reason: str = "") -> bool:
    """Record that an unfinished task moved to `stage` (no-op when it is already there). A pose12
    task leaving the RunningHub stages frees its slot for the next waiting task."""
    with transaction.atomic():
        task = Task.objects.select_for_update().filter(pk=task_id).active().exclude(stage=stage).first()
        if task is None:
            return False
        left_slot = task.type == TaskType.MODEL_POSE12 and task.stage in SLOT_STAGES and stage not in SLOT_STAGES
        task.stage = stage
        task.save(update_fields=["stage", "updated_at"])
        task_event(task=task, from_status=task.status, actor=None, reason=reason or f"阶段: {stage.label}")
        if left_slot:
            transaction.on_commit(enqueue_dispatch)
    return True


def task_lock(*, task_id: uuid.UUID) -> Task:
    """The task row, locked until the end of the caller's transaction."""
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
    stage: TaskStage = TaskStage.RUNNING,
) -> Task | None:
    """pending → processing (saving RunningHub's id in the same transaction). None if not pending."""
    with transaction.atomic():
        task = task_lock(task_id=task_id)
        if task.status != TaskStatus.PENDING:
            return None
        task.status = TaskStatus.PROCESSING
        task.stage = stage
        task.started_at = timezone.now()
        task.vendor_task_id = vendor_task_id or ""
        fields = ["status", "stage", "started_at", "vendor_task_id", "updated_at"]
        if next_attempt_at is not None:
            task.next_attempt_at, task.lease_until, task.transient_errors = next_attempt_at, None, 0
            fields += ["next_attempt_at", "lease_until", "transient_errors"]
        task.save(update_fields=fields)
        task_event(task=task, from_status=TaskStatus.PENDING, actor=actor, reason=reason)
        task_started_event(task=task)
        task_counted(user_id=task.user_id, task_type=task.type, from_status=TaskStatus.PENDING, to_status=task.status)
        return task


def task_succeed(
    *, task_id: uuid.UUID, result_urls: list[str], audit: str = "", actor: User | None = None, reason: str = ""
) -> Task | None:
    """processing → success. None when the task is no longer processing (someone else finished it)."""
    with transaction.atomic():
        task = task_lock(task_id=task_id)
        if task.status != TaskStatus.PROCESSING:
            return None
        task.status = TaskStatus.SUCCESS
        task.stage = TaskStage.DONE
        task.result_urls = result_urls
        task.audit = audit
        task.completed_at = timezone.now()
        task.lease_until = task.next_attempt_at = None
        task.save(
            update_fields=[
                "status",
                "stage",
                "result_urls",
                "audit",
                "completed_at",
                "lease_until",
                "next_attempt_at",
                "updated_at",
            ]
        )
        task_event(task=task, from_status=TaskStatus.PROCESSING, actor=actor, reason=reason or "处理完成")
        task_succeeded_event(task=task)
        task_counted(
            user_id=task.user_id, task_type=task.type, from_status=TaskStatus.PROCESSING, to_status=task.status
        )
        return task


def task_fail(
    *,
    task_id: uuid.UUID,
    code: FailureCode,
    message: str = "",
    detail: str = "",
    actor: User | None = None,
    from_statuses: tuple[str, ...] = ACTIVE_STATUSES,
    cancel_vendor: bool = True,
) -> Task | None:
    """→ failed, refunding the charge in the same transaction. None when the task was not in
    `from_statuses` (already finished, or moved on). `message` is what the member reads (the
    code's fixed text unless given: staff write their own); `detail` (exception or provider text)
    goes only to the status history that staff see. A RunningHub job still running is cancelled
    after commit."""
    message = message or member_message(code)
    with transaction.atomic():
        task = task_lock(task_id=task_id)
        if task.status not in from_statuses:
            return None
        previous, previous_stage = task.status, task.stage
        task.status = TaskStatus.FAILED
        task.stage = TaskStage.DONE
        task.error_message = message[:500]
        task.failure_code = code
        task.completed_at = timezone.now()
        task.lease_until = task.next_attempt_at = None
        task.save(
            update_fields=[
                "status",
                "stage",
                "error_message",
                "failure_code",
                "completed_at",
                "lease_until",
                "next_attempt_at",
                "updated_at",
            ]
        )
        task_event(task=task, from_status=previous, actor=actor, reason=f"{message} ({detail})" if detail else message)
        task_failed_event(task=task, from_status=previous, actor_id=actor.pk if actor else None, detail=detail)
        quota_refund(
            user_id=task.user_id, amount=task.cost, task_id=task.id, reason=f"任务失败: {message}"[:255], actor=actor
        )
        # After the refund: counters are written last, once the user row is locked (tasks/counters.py).
        task_counted(user_id=task.user_id, task_type=task.type, from_status=previous, to_status=task.status)
        if task.type == TaskType.MODEL_POSE12 and previous_stage in SLOT_STAGES:
            transaction.on_commit(enqueue_dispatch)
        if cancel_vendor and previous == TaskStatus.PROCESSING and task.vendor_task_id:
            vendor_id = task.vendor_task_id
            transaction.on_commit(lambda: enqueue_vendor_cancel(vendor_id))
        return task
