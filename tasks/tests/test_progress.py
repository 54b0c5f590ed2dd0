"""What a member sees of progress (tasks/progress.py): queue places and estimates from the median
run time of recent jobs, refreshed by the sweep and read from the cache."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from accounts.tests.factories import make_member
from tasks.models import Task, TaskStatus, TaskType
from tasks.progress import task_progress, typical_run_time, typical_run_times_refresh
from tasks.tests.factories import make_task

pytestmark = pytest.mark.django_db


def _finished(member: Any, task_type: TaskType, seconds: float) -> None:
    task = make_task(member, TaskStatus.SUCCESS, task_type=task_type)
    started = timezone.now() - timedelta(hours=1)
    Task.objects.filter(pk=task.pk).update(started_at=started, completed_at=started + timedelta(seconds=seconds))


def test_no_estimate_before_any_job_of_the_type_finished() -> None:
    member = make_member(quota=5)
    task = make_task(member)
    assert typical_run_times_refresh() == {"basic_clean": None, "model_pose12": None}
    progress = task_progress([task])[task.pk]
    assert (progress.queue_position, progress.estimated_start_at, progress.estimated_done_at) == (None, None, None)


def test_the_median_of_recent_jobs_gives_the_estimates(settings: Any) -> None:
    settings.RUNNINGHUB_MAX_CONCURRENCY = 1
    member = make_member(quota=20)
    for seconds in (10, 30, 1000):
        _finished(member, TaskType.MODEL_POSE12, seconds)
    _finished(member, TaskType.BASIC_CLEAN, 4)
    assert typical_run_times_refresh() == {"basic_clean": 4, "model_pose12": 30}
    assert typical_run_time(TaskType.MODEL_POSE12) == timedelta(seconds=30)

    first, second = (make_task(member, task_type=TaskType.MODEL_POSE12) for _ in range(2))
    running = make_task(member, TaskStatus.PROCESSING)
    done = make_task(member, TaskStatus.SUCCESS)
    before = timezone.now()
    progress = task_progress([first, second, running, done])
    assert [progress[t.pk].queue_position for t in (first, second)] == [1, 2]
    # One slot: the second in line starts a job length after the first.
    gap = progress[second.pk].estimated_start_at - progress[first.pk].estimated_start_at  # type: ignore[operator]
    assert gap == timedelta(seconds=30)
    assert progress[first.pk].estimated_start_at >= before + timedelta(seconds=30)  # type: ignore[operator]
    started = Task.objects.get(pk=running.pk).started_at
    assert progress[running.pk].estimated_start_at == started
    assert progress[running.pk].estimated_done_at >= before  # type: ignore[operator]
    assert done.pk not in progress, "a finished task has no progress to show"


def test_the_task_json_carries_the_estimates(client_for: Any) -> None:
    member = make_member(quota=5)
    _finished(member, TaskType.BASIC_CLEAN, 4)
    typical_run_times_refresh()
    task = make_task(member)
    body = client_for(member).get(f"/api/task/{task.pk}").json()["data"]
    assert body["queuePosition"] is None and body["estimatedStartAt"] and body["estimatedDoneAt"]
    assert body["estimatedDoneAt"] > body["estimatedStartAt"] and body["estimatedDoneAt"].endswith("+00:00")


def test_a_process_reads_the_shared_estimate_at_most_once_per_interval(monkeypatch: pytest.MonkeyPatch) -> None:
    from django.core.cache import cache

    from tasks import progress

    clock = [1000.0]
    monkeypatch.setattr(progress.time, "monotonic", lambda: clock[0])
    cache.set(progress._cache_key(TaskType.BASIC_CLEAN), 4, 600)
    assert typical_run_time(TaskType.BASIC_CLEAN) == timedelta(seconds=4)
    # Another process's sweep refreshes the shared value: this one keeps its copy for a while...
    cache.set(progress._cache_key(TaskType.BASIC_CLEAN), 9, 600)
    clock[0] += progress.LOCAL_SECONDS - 1
    assert typical_run_time(TaskType.BASIC_CLEAN) == timedelta(seconds=4)
    # ...then reads the new one.
    clock[0] += 1
    assert typical_run_time(TaskType.BASIC_CLEAN) == timedelta(seconds=9)
    # A refresh in this process is seen at once.
    member = make_member(quota=5)
    _finished(member, TaskType.BASIC_CLEAN, 7)
    typical_run_times_refresh()
    assert typical_run_time(TaskType.BASIC_CLEAN) == timedelta(seconds=7)
