"""What a member sees of an unfinished task's progress: its place in the queue for a RunningHub
slot and estimated start and finish times, from the median run time of recent jobs of its type."""

from __future__ import annotations

import math
import statistics
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

from tasks.dispatch import queue_positions
from tasks.models import Task, TaskStage, TaskStatus, TaskType

RECENT_JOBS = 50
# Refreshed by every sweep (a minute apart); kept a while longer so a late sweep leaves no gap.
ESTIMATE_CACHE_SECONDS = 600
# Each process keeps what it read this long: estimates move slowly, and every create answers with
# one, which then costs no cache round trip.
LOCAL_SECONDS = 30
_local: dict[str, tuple[float, float | None]] = {}


@dataclass(frozen=True)
class Progress:
    queue_position: int | None = None
    estimated_start_at: datetime | None = None
    estimated_done_at: datetime | None = None


def _cache_key(task_type: str) -> str:
    return f"tasks:typical-run:{task_type}"


def typical_run_times_refresh() -> dict[str, float | None]:
    """Median start-to-finish seconds of the last successful jobs of each type, into the cache
    (the sweep calls this, so reading a task never waits for it)."""
    medians: dict[str, float | None] = {}
    for task_type in TaskType.values:
        recent = (
            Task.objects.filter(status=TaskStatus.SUCCESS, type=task_type, started_at__isnull=False)
            .order_by("-created_at")
            .values_list("started_at", "completed_at")[:RECENT_JOBS]
        )
        durations = [(done - start).total_seconds() for start, done in recent if done and start]
        medians[task_type] = statistics.median(durations) if durations else None
        cache.set(_cache_key(task_type), medians[task_type], ESTIMATE_CACHE_SECONDS)
        _local[task_type] = (time.monotonic() + LOCAL_SECONDS, medians[task_type])
    return medians


def typical_run_times_forget() -> None:
    """Drop this process's copies (the next read goes to the cache)."""
    _local.clear()


def typical_run_time(task_type: str) -> timedelta | None:
    """The cached median run time of `task_type`; None when unknown (no job finished yet)."""
    now = time.monotonic()
    held = _local.get(task_type)
    if held is None or held[0] <= now:
        held = _local[task_type] = (now + LOCAL_SECONDS, cache.get(_cache_key(task_type)))
    seconds = held[1]
    return timedelta(seconds=seconds) if seconds is not None else None


def task_progress(tasks: Iterable[Task]) -> dict[uuid.UUID, Progress]:
    tasks = [task for task in tasks if task.status in (TaskStatus.PENDING, TaskStatus.PROCESSING)]
    waiting = any(t.type == TaskType.MODEL_POSE12 and t.stage == TaskStage.QUEUED for t in tasks)
    positions = queue_positions() if waiting else {}
    now = timezone.now()
    progress = {}
    for task in tasks:
        run = typical_run_time(task.type)
        position = positions.get(task.id) if task.type == TaskType.MODEL_POSE12 else None
        if run is None:
            progress[task.id] = Progress(queue_position=position)
            continue
        if task.started_at is not None:
            start = task.started_at
        elif position is not None:
            # Slots free one job length at a time, RUNNINGHUB_MAX_CONCURRENCY of them in parallel.
            start = now + run * math.floor((position - 1) / settings.RUNNINGHUB_MAX_CONCURRENCY + 1)
        else:
            start = now
        progress[task.id] = Progress(
            queue_position=position, estimated_start_at=start, estimated_done_at=max(start + run, now)
        )
    return progress
