"""The task lifecycle (tasks/lifecycle.py): transitions under the task's row lock, so of paths
racing to fail a task (the sweep, the member's cancel, staff) one wins and refunds once; raced
with real threads on PostgreSQL."""

from __future__ import annotations

import pytest

from accounts.tests.factories import make_user
from core.tests.helpers import race
from quota.models import LedgerKind, QuotaLedger
from quota.selectors import quota_mismatches
from tasks.actions import task_cancel, task_update_status
from tasks.models import Task, TaskEvent, TaskStatus
from tasks.sweep import tasks_sweep
from tasks.tests.factories import make_stale_tasks

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
