"""The periodic sweep: fails timed-out tasks (refunding them), re-queues work whose message was
lost, expires lapsed quota and forgets old idempotency keys. Two sweeps at once are harmless:
every change is a guarded transition or a skip-locked update.

Timed-out tasks are failed set-based: a batch is a fixed number of statements whatever its size
(the same writes as `task_fail`, for many tasks at once). Only a processing RunningHub job gets a
per-task last look at the provider before it fails."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from media.services import media_uploads_clean
from quota.services import quota_expire_lapsed, quota_refund_tasks, quota_refunds_written
from tasks.counters import task_counters_move_sql
from tasks.creation import IDEMPOTENCY_TTL
from tasks.dispatch import pose12_dispatch
from tasks.events import tasks_failed_in_bulk_event, tasks_swept_event
from tasks.lifecycle import member_message, task_fail
from tasks.models import (
    FailureCode,
    IdempotencyKey,
    Task,
    TaskEvent,
    TaskQuerySet,
    TaskStage,
    TaskStatus,
    TaskType,
    stuck_condition,
)
from tasks.notify import tasks_changed
from tasks.processing import task_processing_timed_out
from tasks.progress import typical_run_times_refresh
from tasks.queue import enqueue_advance

# Tasks failed per batch: one transaction of one statement whatever its size.
SWEEP_BATCH = 1000
# A sweep stops picking up new work after this long; the next run (a minute later) goes on.
SWEEP_TIME_BUDGET_SECONDS = 40
# Work more than this overdue, with no worker holding it, lost its queued message.
REQUEUE_GRACE = timedelta(seconds=60)


@dataclass(frozen=True)
class SweepReport:
    failed_pending: int = 0
    failed_processing: int = 0
    requeued: int = 0
    quota_expired: int = 0
    idempotency_purged: int = 0
    uploads_cleaned: int = 0

    @property
    def failed(self) -> int:
        return self.failed_pending + self.failed_processing


# The picked rows (oldest first, skip-locked, so two sweeps take different tasks) are failed, their
# status events written, their charges refunded (quota/services.py) and the counters moved
# (tasks/counters.py), all by one statement. Events and refunds are written oldest first. The
# picked ids reach the UPDATE as one array, so it finds each task through the primary key instead
# of scanning every task in the status to join them.
_FAIL_BATCH_SQL = """
WITH picked AS ({picked}),
failed AS (
    UPDATE {tasks} t
    SET status = %s, stage = %s, error_message = %s, failure_code = %s, completed_at = %s, updated_at = %s,
        lease_until = NULL, next_attempt_at = NULL
    WHERE t.id = ANY(ARRAY(SELECT id FROM picked)) AND t.status = %s
    RETURNING t.id AS task_id, t.user_id, t.type, t.cost AS amount, t.{age} AS ord
),
events AS (
    INSERT INTO {events} (task_id, from_status, to_status, stage, actor_id, reason, at)
    SELECT task_id, %s, %s, %s, NULL, %s, %s FROM failed ORDER BY ord, task_id
),
{refunds},
{counters}
SELECT task_id, type, {refunded}, {units} FROM failed
"""


def _fail_batch(*, stale: TaskQuerySet, from_status: TaskStatus, age: str, code: FailureCode) -> int:
    """Fails up to SWEEP_BATCH of `stale` (tasks in `from_status`), oldest by `age` first, and
    refunds them, in one transaction of one statement: fail and write events, lock the members
    (in id order), write refunds and balances, move the counters. Returns how many it failed."""
    message = member_message(code)[:500]
    picked = stale.order_by(age).select_for_update(skip_locked=True).values("id")[:SWEEP_BATCH]
    now = timezone.now()
    with transaction.atomic():
        # Compiled inside the transaction: Django refuses FOR UPDATE outside one.
        picked_sql, picked_params = picked.query.sql_with_params()
        refunds = quota_refund_tasks(source="failed", reason=f"任务失败: {message}")
        counters_sql, counters_params = task_counters_move_sql(
            source=refunds.locked, from_status=from_status, to_status=TaskStatus.FAILED
        )
        sql = _FAIL_BATCH_SQL.format(
            picked=picked_sql,
            tasks=Task._meta.db_table,
            events=TaskEvent._meta.db_table,
            age=age,
            refunds=refunds.sql,
            counters=counters_sql,
            refunded=refunds.refunds,
            units=refunds.units,
        )
        with connection.cursor() as cursor:
            cursor.execute(
                sql,
                [
                    *picked_params,
                    *(TaskStatus.FAILED, TaskStage.DONE, message, code, now, now, from_status),
                    *(from_status, TaskStatus.FAILED, TaskStage.DONE, message, now),
                    *refunds.params,
                    *counters_params,
                ],
            )
            failed = cursor.fetchall()
        if not failed:
            return 0
        quota_refunds_written(refunds=failed[0][2], units=failed[0][3])
        tasks_failed_in_bulk_event(
            types=[task_type for _, task_type, _, _ in failed], code=code, from_status=from_status
        )
        # No RunningHub job to cancel: tasks with one get their last look one by one instead.
        transaction.on_commit(lambda: tasks_changed([task_id for task_id, _, _, _ in failed]))
    return len(failed)


def _fail_all(*, stale: TaskQuerySet, from_status: TaskStatus, age: str, code: FailureCode, deadline: float) -> int:
    """Batch after batch, oldest first, until nothing is left or the time budget is spent."""
    if connection.vendor != "postgresql":
        # The embedded default's SQLite has none of the set-based statements' PostgreSQL features
        # (arrays, data-modifying WITH); its few tasks are failed one by one through the lifecycle.
        return sum(
            task_fail(task_id=pk, code=code, from_statuses=(from_status,)) is not None
            for pk in _oldest_first(stale.order_by(age), deadline)
        )
    failed = 0
    while time.monotonic() < deadline:
        batch = _fail_batch(stale=stale, from_status=from_status, age=age, code=code)
        failed += batch
        if batch == 0:
            break
    return failed


def _oldest_first(queryset: TaskQuerySet, deadline: float) -> Iterator[uuid.UUID]:
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
    """One sweep; a real one (not a dry run) is timed, counted and logged."""
    started = time.monotonic()
    report = _sweep_once(dry_run=dry_run)
    if not dry_run:
        tasks_swept_event(counts=asdict(report), seconds=time.monotonic() - started)
    return report


def _sweep_once(*, dry_run: bool) -> SweepReport:
    now = timezone.now()
    stale_pending = Task.objects.stale_pending(now)
    stale_processing = Task.objects.stale_processing(now)
    # Only a RunningHub job can still have finished: those tasks get their last look one by one;
    # the rest (basic_clean, or a job never submitted) are failed set-based.
    at_vendor = Q(type=TaskType.MODEL_POSE12) & ~Q(vendor_task_id="")
    if dry_run:
        return SweepReport(failed_pending=stale_pending.count(), failed_processing=stale_processing.count())
    deadline = time.monotonic() + SWEEP_TIME_BUDGET_SECONDS
    failed_pending = _fail_all(
        stale=stale_pending,
        from_status=TaskStatus.PENDING,
        age="created_at",
        code=FailureCode.TIMEOUT,
        deadline=deadline,
    )
    failed_processing = _fail_all(
        stale=stale_processing.exclude(at_vendor),
        from_status=TaskStatus.PROCESSING,
        age="started_at",
        code=FailureCode.PROCESSING_TIMEOUT,
        deadline=deadline,
    )
    failed_processing += sum(
        task_processing_timed_out(task_id=pk)
        for pk in _oldest_first(stale_processing.filter(at_vendor).order_by("started_at"), deadline)
    )
    # Slots freed by the tasks failed here (and any wake-up that was lost) go to waiting tasks.
    pose12_dispatch()
    typical_run_times_refresh()
    return SweepReport(
        failed_pending=failed_pending,
        failed_processing=failed_processing,
        requeued=_requeue_overdue(now),
        quota_expired=quota_expire_lapsed(),
        idempotency_purged=IdempotencyKey.objects.filter(created_at__lt=now - IDEMPOTENCY_TTL).delete()[0],
        uploads_cleaned=media_uploads_clean(),
    )


def _requeue_overdue(now: datetime) -> int:
    """Active tasks whose next step is overdue and that no worker holds, except those past their
    timeout (the next sweep fails them instead). A lapsed lease needs no grace: a live holder
    renews it while its step runs (tasks/lifecycle.py), so its holder died mid-step."""
    with transaction.atomic():
        overdue = list(
            Task.objects.select_for_update(skip_locked=True)
            .active()
            .lease_free(now)
            .filter(Q(next_attempt_at__lt=now - REQUEUE_GRACE) | Q(lease_until__isnull=False))
            .exclude(stuck_condition(now))
            .order_by("next_attempt_at")
            .values_list("id", "type")[:SWEEP_BATCH]
        )
        if overdue:
            Task.objects.filter(pk__in=[task_id for task_id, _ in overdue]).update(
                next_attempt_at=now, lease_until=None
            )
            transaction.on_commit(lambda: _enqueue_all(overdue, due=now))
    return len(overdue)


def _enqueue_all(tasks: list[tuple[uuid.UUID, str]], *, due: datetime) -> None:
    for task_id, task_type in tasks:
        enqueue_advance(task_id=task_id, task_type=task_type, due=due)
