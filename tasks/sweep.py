"""The periodic sweep: fails timed-out tasks (refunding them), re-queues work whose message was
lost, expires lapsed quota and forgets old idempotency keys. Two sweeps at once are harmless:
every change is a guarded transition or a skip-locked update."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from quota.services import quota_expire_lapsed
from tasks.creation import IDEMPOTENCY_TTL
from tasks.events import tasks_swept_event
from tasks.lifecycle import task_fail
from tasks.models import FailureCode, IdempotencyKey, Task, TaskQuerySet, TaskStatus, stuck_condition
from tasks.processing import task_processing_timed_out
from tasks.queue import enqueue_advance

SWEEP_BATCH = 500
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

    @property
    def failed(self) -> int:
        return self.failed_pending + self.failed_processing


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
    stale_pending = Task.objects.stale_pending(now).order_by("created_at")
    stale_processing = Task.objects.stale_processing(now).order_by("started_at")
    if dry_run:
        return SweepReport(failed_pending=stale_pending.count(), failed_processing=stale_processing.count())
    deadline = time.monotonic() + SWEEP_TIME_BUDGET_SECONDS
    failed_pending = sum(
        task_fail(task_id=pk, code=FailureCode.TIMEOUT, from_statuses=(TaskStatus.PENDING,)) is not None
        for pk in _oldest_first(stale_pending, deadline)
    )
    failed_processing = sum(task_processing_timed_out(task_id=pk) for pk in _oldest_first(stale_processing, deadline))
    return SweepReport(
        failed_pending=failed_pending,
        failed_processing=failed_processing,
        requeued=_requeue_overdue(now),
        quota_expired=quota_expire_lapsed(),
        idempotency_purged=IdempotencyKey.objects.filter(created_at__lt=now - IDEMPOTENCY_TTL).delete()[0],
    )


def _requeue_overdue(now: datetime) -> int:
    """Active tasks whose next step is overdue and that no worker holds, except those past their
    timeout (the next sweep fails them instead)."""
    with transaction.atomic():
        overdue = list(
            Task.objects.select_for_update(skip_locked=True)
            .active()
            .lease_free(now)
            .filter(next_attempt_at__lt=now - REQUEUE_GRACE)
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
