"""The sweep at scale: the product's set-based sweep against the row-by-row loop it replaced (kept
here as the baseline, not in the product): one `task_fail` per stale task, oldest first, each in its
own transaction with its own refund."""

from __future__ import annotations

from dataclasses import dataclass
from time import perf_counter

from django.utils import timezone

from bench.recorder import recording
from tasks.lifecycle import task_fail
from tasks.models import FailureCode, Task, TaskStatus
from tasks.sweep import tasks_sweep


@dataclass(frozen=True)
class SweepRun:
    name: str
    failed: int
    seconds: float
    statements: int

    @property
    def per_second(self) -> float:
        return self.failed / self.seconds if self.seconds else 0.0


def row_by_row(limit: int) -> SweepRun:
    """The old loop over the `limit` oldest stale pending tasks."""
    ids = list(Task.objects.stale_pending(timezone.now()).order_by("created_at").values_list("id", flat=True)[:limit])
    with recording() as rec:
        began = perf_counter()
        failed = sum(
            task_fail(task_id=pk, code=FailureCode.TIMEOUT, from_statuses=(TaskStatus.PENDING,)) is not None
            for pk in ids
        )
        seconds = perf_counter() - began
    return SweepRun(name="row by row (baseline)", failed=failed, seconds=seconds, statements=len(rec.queries))


def set_based() -> SweepRun:
    """One run of the product's sweep over the whole backlog."""
    with recording() as rec:
        began = perf_counter()
        report = tasks_sweep()
        seconds = perf_counter() - began
    return SweepRun(name="set-based (tasks_sweep)", failed=report.failed, seconds=seconds, statements=len(rec.queries))
