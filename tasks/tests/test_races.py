"""Racing paths to `failed` on PostgreSQL with real threads: one refund, each task failed once."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from accounts.tests.factories import make_member, make_user
from quota.models import LedgerKind, QuotaLedger
from quota.selectors import quota_mismatches
from tasks import sweep
from tasks.actions import task_cancel, task_update_status
from tasks.creation import task_create
from tasks.models import Task, TaskEvent, TaskStatus, TaskType
from tasks.sweep import tasks_sweep
from tasks.tests.factories import broker, public_dns

pytestmark = pytest.mark.django_db(transaction=True)


def race(*works: Callable[[], object]) -> list[object]:
    barrier = threading.Barrier(len(works))
    results: list[object] = [None] * len(works)

    def run(index: int, work: Callable[[], object]) -> None:
        barrier.wait()
        try:
            results[index] = work()
        except Exception as exc:
            results[index] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, w)) for i, w in enumerate(works)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


def stale_tasks(count: int) -> list[Task]:

    owner = make_member(quota=count)
    with public_dns(), broker():
        tasks = [
            task_create(
                user=owner,
                task_type=TaskType.BASIC_CLEAN,
                input_image_url="https://images.example.com/p.png",
                params={},
            ).task
            for _ in range(count)
        ]
    Task.objects.filter(pk__in=[t.pk for t in tasks]).update(created_at=timezone.now() - timedelta(hours=1))
    return tasks


@pytest.mark.parametrize("attempt", range(3))
def test_sweep_cancel_and_staff_fail_refund_once(attempt: int) -> None:
    [task] = stale_tasks(1)
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


def test_two_sweeps_at_once_fail_each_task_once() -> None:
    tasks = stale_tasks(20)
    first, second = race(tasks_sweep, tasks_sweep)
    assert first.failed_pending + second.failed_pending == 20  # type: ignore[attr-defined]
    assert TaskEvent.objects.filter(to_status=TaskStatus.FAILED).count() == 20
    assert QuotaLedger.objects.filter(kind=LedgerKind.REFUND).count() == 20
    owner = tasks[0].user
    owner.refresh_from_db()
    assert owner.quota_remaining == 20
    assert quota_mismatches() == []


def test_sweep_requeues_work_whose_message_was_lost() -> None:
    """A broker outage at creation: nothing was queued; the sweep queues it once it is overdue."""

    owner = make_member()
    with public_dns(), broker(down=True):
        created = task_create(
            user=owner, task_type=TaskType.BASIC_CLEAN, input_image_url="https://images.example.com/p.png", params={}
        )
    assert Task.objects.get(pk=created.task.pk).status == TaskStatus.PENDING
    Task.objects.filter(pk=created.task.pk).update(next_attempt_at=timezone.now() - timedelta(minutes=2))
    with broker() as queued:
        report = tasks_sweep()
        assert report.requeued == 1
        assert tasks_sweep().requeued == 0, "a fresh re-enqueue is not repeated by the next sweep"
    assert queued.task_ids() == [str(created.task.pk)]


def test_cleanup_command_dry_run_and_run(capsys: pytest.CaptureFixture[str]) -> None:
    from django.core.management import call_command

    stale_tasks(3)
    call_command("cleanup_timeout_tasks", "--dry-run")
    assert "would fail 3 task(s)" in capsys.readouterr().out
    assert Task.objects.filter(status=TaskStatus.PENDING).count() == 3
    call_command("cleanup_timeout_tasks")
    assert "failed 3 task(s)" in capsys.readouterr().out
    assert set(Task.objects.values_list("error_message", flat=True)) == {"任务超时(10分钟未处理)"}


def test_sweep_expires_lapsed_membership_quota() -> None:
    from accounts.models import User

    lapsed = make_member(quota=4)
    User.objects.filter(pk=lapsed.pk).update(quota_expire_at=timezone.now() - timedelta(minutes=1))
    assert tasks_sweep().quota_expired == 1
    lapsed.refresh_from_db()
    assert lapsed.quota_remaining == 0
    assert QuotaLedger.objects.filter(user=lapsed, kind=LedgerKind.EXPIRE).count() == 1


@pytest.mark.parametrize("quota", [1, 10])
def test_concurrent_requests_with_one_idempotency_key_make_one_task(quota: int) -> None:
    """With quota for one task only, the retries must replay it rather than be refused (1003)."""

    owner = make_member(quota=quota)

    def order() -> object:
        return task_create(
            user=owner,
            task_type=TaskType.BASIC_CLEAN,
            input_image_url="https://images.example.com/p.png",
            params={},
            idempotency_key="checkout-7",
        ).task.pk

    with public_dns(), broker():
        results = race(*[order] * 10)
    assert len(set(results)) == 1 and isinstance(results[0], uuid.UUID), results
    owner.refresh_from_db()
    assert owner.quota_remaining == quota - 1
    assert Task.objects.filter(user=owner).count() == 1
    assert quota_mismatches() == []


def test_one_sweep_fails_a_backlog_larger_than_a_batch_oldest_first(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sweep, "SWEEP_BATCH", 4)
    tasks = stale_tasks(10)
    oldest = tasks[-1]
    Task.objects.filter(pk=oldest.pk).update(created_at=timezone.now() - timedelta(days=2))
    order: list[object] = []
    real_fail = sweep.task_fail

    def recording_fail(**kwargs: object) -> object:
        order.append(kwargs["task_id"])
        return real_fail(**kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(sweep, "task_fail", recording_fail)
    assert tasks_sweep().failed_pending == 10
    assert order[0] == oldest.pk


def test_sweep_does_not_requeue_tasks_past_their_timeout() -> None:
    from unittest import mock

    [task] = stale_tasks(1)
    Task.objects.filter(pk=task.pk).update(next_attempt_at=timezone.now() - timedelta(minutes=30))
    with mock.patch("tasks.sweep.task_fail", return_value=None), broker() as queued:
        assert tasks_sweep().requeued == 0
    assert queued.sent == []


def test_worker_fails_a_pending_task_past_its_timeout_instead_of_starting_it() -> None:
    from tasks.processing import task_advance

    [task] = stale_tasks(1)
    task_advance(task_id=task.pk, token=None)
    task.refresh_from_db()
    assert (task.status, task.error_message, task.started_at) == (TaskStatus.FAILED, "任务超时(10分钟未处理)", None)
    assert QuotaLedger.objects.filter(task_id=task.pk, kind=LedgerKind.REFUND).count() == 1


def test_a_long_queue_full_wait_leaves_the_error_budget_intact() -> None:
    """After many 421s a task still survives a run of transient errors before it fails."""
    from unittest import mock

    from aimodel.runninghub import RunningHubQueueFull, RunningHubTransientError
    from media.tests.images import product_photo
    from tasks.processing import MAX_TRANSIENT_ERRORS, task_advance

    owner = make_member()
    with public_dns(), broker():
        task = task_create(
            user=owner, task_type=TaskType.MODEL_POSE12, input_image_url="https://images.example.com/p.png", params={}
        ).task
    client = mock.Mock()
    with (
        mock.patch("tasks.processing._input_image", return_value=product_photo()),
        mock.patch("tasks.processing.runninghub_client", return_value=client),
        mock.patch("tasks.processing.prompt_for", return_value="prompt"),
        broker(),
    ):
        client.upload_image.side_effect = RunningHubQueueFull("421", code=421)
        for _ in range(20):
            task_advance(task_id=task.pk, token=None)
        client.upload_image.side_effect = RunningHubTransientError("502")
        for _ in range(MAX_TRANSIENT_ERRORS - 4):
            task_advance(task_id=task.pk, token=None)
        assert Task.objects.get(pk=task.pk).status == TaskStatus.PENDING
        for _ in range(4):
            task_advance(task_id=task.pk, token=None)
    task.refresh_from_db()
    assert task.status == TaskStatus.FAILED and task.error_message.startswith("处理失败")
    assert QuotaLedger.objects.filter(task_id=task.pk, kind=LedgerKind.REFUND).count() == 1


def test_the_sweep_stops_within_its_time_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    import time as clock

    stale_tasks(10)
    monkeypatch.setattr(sweep, "SWEEP_TIME_BUDGET_SECONDS", 0.5)
    real_fail = sweep.task_fail

    def slow_fail(**kwargs: object) -> object:
        clock.sleep(0.2)
        return real_fail(**kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(sweep, "task_fail", slow_fail)
    started = clock.monotonic()
    failed = tasks_sweep().failed_pending
    assert 1 <= failed <= 4
    assert clock.monotonic() - started < 1.5
    assert tasks_sweep().failed_pending >= 1, "the next sweep goes on"


def test_a_storage_outage_is_retried_not_left_stuck() -> None:
    from unittest import mock

    from media.storage import StorageError
    from media.tests.images import product_photo
    from tasks.processing import task_advance

    owner = make_member()
    with public_dns(), broker():
        task = task_create(
            user=owner, task_type=TaskType.BASIC_CLEAN, input_image_url="https://images.example.com/p.png", params={}
        ).task
    storage = mock.Mock()
    storage.save.side_effect = StorageError("COS 503")
    with (
        mock.patch("tasks.processing.fetch", return_value=product_photo()),
        mock.patch("tasks.processing.get_storage", return_value=storage),
        broker() as queued,
    ):
        task_advance(task_id=task.pk, token=None)
    task.refresh_from_db()
    assert (task.status, task.transient_errors, task.lease_until) == (TaskStatus.PROCESSING, 1, None)
    assert queued.task_ids() == [str(task.pk)], "the next attempt is scheduled"
    assert storage.delete.call_count == 3, "nothing unaudited is left behind"
