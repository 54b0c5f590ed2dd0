"""The task lifecycle (tasks/lifecycle.py): transitions under the task's row lock, so of paths
racing to fail a task (the sweep, the member's cancel, staff) one wins and refunds once; raced
with real threads on PostgreSQL."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import pytest

from accounts.tests.factories import make_member, make_user
from core.tests.helpers import race
from quota.models import LedgerKind, QuotaLedger
from quota.selectors import quota_mismatches
from tasks import lifecycle
from tasks.actions import task_cancel, task_update_status
from tasks.lifecycle import member_message, task_claim, task_fail, task_lease_heartbeat, task_release
from tasks.models import FailureCode, Task, TaskEvent, TaskStatus
from tasks.sweep import tasks_sweep
from tasks.tests.factories import broker, make_stale_tasks, make_task

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize("attempt", range(3))
def test_sweep_cancel_and_staff_fail_refund_once(attempt: int) -> None:
    [task] = make_stale_tasks(1)
    staff = make_user(is_staff=True)
    results = race(
        tasks_sweep,
        lambda: task_cancel(task_id=task.pk, user=task.user),
        lambda: task_update_status(task_id=task.pk, status=TaskStatus.FAILED, actor=staff, error_message="staff"),
    )
    assert QuotaLedger.objects.filter(task_id=task.pk, kind=LedgerKind.REFUND).count() == 1
    assert Task.objects.get(pk=task.pk).status == TaskStatus.FAILED
    assert TaskEvent.objects.filter(task=task, to_status=TaskStatus.FAILED).count() == 1
    losers = [r for r in results[1:] if isinstance(r, Exception)]
    assert all(getattr(r, "code", None) == 4005 for r in losers), results
    assert quota_mismatches() == []


@pytest.mark.parametrize(
    ("timeout", "message"),
    [
        (600, "任务超时(10分钟未处理)"),
        (60, "任务超时(1分钟未处理)"),
        (59, "任务超时(59秒未处理)"),
        (90, "任务超时(90秒未处理)"),
    ],
)
def test_pending_timeout_message_never_says_zero_minutes(settings: Any, timeout: int, message: str) -> None:
    settings.TASK_PENDING_TIMEOUT = timeout
    assert member_message(FailureCode.TIMEOUT) == message


@pytest.fixture
def short_lease(monkeypatch: pytest.MonkeyPatch) -> timedelta:
    """A one-second lease renewed every 0.2 s, so a test sees several beats and a lapse."""
    monkeypatch.setattr(lifecycle, "LEASE", timedelta(seconds=1))
    monkeypatch.setattr(lifecycle, "LEASE_RENEW_EVERY", timedelta(seconds=0.2))
    return timedelta(seconds=1)


def test_heartbeat_keeps_a_long_step_held_past_the_lease_then_releases(short_lease: timedelta) -> None:
    task = task_claim(task_id=make_task(make_member()).pk, token=None)
    assert task is not None
    with task_lease_heartbeat(task):
        time.sleep(3 * short_lease.total_seconds())
        # Still held by us: a redelivered message or the sweep's re-queue claims nothing.
        assert task_claim(task_id=task.pk, token=None) is None
        assert Task.objects.get(pk=task.pk).lease_until == task.lease_until
    with broker() as sent:
        task_release(task=task, delay=5, error=None)
    released = Task.objects.get(pk=task.pk)
    assert released.lease_until is None and released.next_attempt_at is not None
    assert sent.task_ids() == [str(task.pk)]


def test_a_dead_holders_task_is_free_within_the_lease(short_lease: timedelta) -> None:
    task = task_claim(task_id=make_task(make_member()).pk, token=None)
    assert task is not None
    with task_lease_heartbeat(task):
        time.sleep(0.5)
    # The holder died without releasing: nothing renews the lease any more.
    assert task_claim(task_id=task.pk, token=None) is None
    time.sleep(short_lease.total_seconds() + 0.2)
    assert task_claim(task_id=task.pk, token=None) is not None


def test_the_heartbeat_stops_when_the_task_finishes(short_lease: timedelta) -> None:
    task = task_claim(task_id=make_task(make_member()).pk, token=None)
    assert task is not None
    with task_lease_heartbeat(task):
        task_fail(task_id=task.pk, code=FailureCode.CANCELLED)
        time.sleep(0.6)
        assert Task.objects.get(pk=task.pk).lease_until is None


def test_the_production_lease_frees_a_killed_workers_task_within_a_minute() -> None:
    assert timedelta(seconds=30) >= lifecycle.LEASE and lifecycle.LEASE_RENEW_EVERY * 3 <= lifecycle.LEASE
