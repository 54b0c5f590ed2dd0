"""The periodic sweep (tasks/sweep.py): fails timed-out tasks oldest first within its batch and
time budget, re-queues work whose message was lost (never work past its timeout), expires lapsed
quota; two sweeps at once are harmless (real threads on PostgreSQL)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import User
from accounts.tests.factories import balance, make_member, make_user
from aimodel.engines import runninghub_client
from core.tests.helpers import race
from quota.models import LedgerKind, QuotaLedger
from quota.selectors import quota_mismatches
from quota.services import quota_adjust, quota_refund
from tasks import creation, sweep
from tasks.actions import task_cancel, task_update_status
from tasks.counters import task_counter_mismatches
from tasks.creation import task_create
from tasks.lifecycle import member_message
from tasks.models import FailureCode, Task, TaskCounter, TaskEvent, TaskStatus, TaskType
from tasks.processing import task_advance
from tasks.sweep import SweepReport, tasks_sweep
from tasks.tests.conftest import wait_for
from tasks.tests.factories import INPUT_URL, broker, make_stale_tasks, make_task, public_dns

pytestmark = pytest.mark.django_db(transaction=True)

INPUT_HOST = urlsplit(INPUT_URL).hostname


def failure_order() -> list[object]:
    """Task ids in the order they were failed (event ids grow with every insert)."""
    return list(TaskEvent.objects.filter(to_status=TaskStatus.FAILED).order_by("id").values_list("task_id", flat=True))


def test_two_sweeps_at_once_fail_each_task_once() -> None:
    tasks = make_stale_tasks(20)
    first, second = race(tasks_sweep, tasks_sweep)
    assert isinstance(first, SweepReport) and isinstance(second, SweepReport), (first, second)
    assert first.failed_pending + second.failed_pending == 20
    assert TaskEvent.objects.filter(to_status=TaskStatus.FAILED).count() == 20
    assert QuotaLedger.objects.filter(kind=LedgerKind.REFUND).count() == 20
    assert balance(tasks[0].user) == 20
    assert quota_mismatches() == []


def test_sweep_requeues_work_whose_message_was_lost() -> None:
    """A broker outage at creation: nothing was queued; the sweep queues it once it is overdue."""

    owner = make_member()
    with public_dns(), broker(down=True):
        created = task_create(user=owner, task_type=TaskType.BASIC_CLEAN, input_image_url=INPUT_URL, params={})
    assert Task.objects.get(pk=created.task.pk).status == TaskStatus.PENDING
    Task.objects.filter(pk=created.task.pk).update(next_attempt_at=timezone.now() - timedelta(minutes=2))
    with broker() as queued:
        report = tasks_sweep()
        assert report.requeued == 1
        assert tasks_sweep().requeued == 0, "a fresh re-enqueue is not repeated by the next sweep"
    assert queued.task_ids() == [str(created.task.pk)]


def test_sweep_requeues_a_dead_workers_task_as_soon_as_its_lease_lapses() -> None:
    """Fault drill worker_kill: a worker SIGKILLed mid-step leaves its lease to lapse (within
    LEASE, 30 s) and its message unacknowledged. The task was due only seconds ago, within the
    grace for lost messages, yet it is queued again at once; a task still held is not."""
    now = timezone.now()
    dead, held = make_task(make_member()), make_task(make_member())
    Task.objects.filter(pk=dead.pk).update(next_attempt_at=now - timedelta(seconds=5), lease_until=now)
    Task.objects.filter(pk=held.pk).update(
        next_attempt_at=now - timedelta(minutes=5), lease_until=now + timedelta(seconds=20)
    )
    with broker() as queued:
        assert tasks_sweep().requeued == 1
    assert queued.task_ids() == [str(dead.pk)]
    assert Task.objects.get(pk=dead.pk).lease_until is None


def test_sweep_does_not_requeue_tasks_past_their_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    """Overdue work past its timeout is left for failing, not queued again. With no time to fail
    anything in this sweep, the timed-out task stays pending and must still not be queued."""
    monkeypatch.setattr(sweep, "SWEEP_TIME_BUDGET_SECONDS", 0)
    [timed_out] = make_stale_tasks(1)
    lost = make_task(make_member())
    Task.objects.filter(pk=timed_out.pk).update(next_attempt_at=timezone.now() - timedelta(minutes=30))
    Task.objects.filter(pk=lost.pk).update(next_attempt_at=timezone.now() - timedelta(minutes=2))
    with broker() as queued:
        report = tasks_sweep()
    assert (report.failed_pending, report.requeued) == (0, 1)
    assert queued.task_ids() == [str(lost.pk)], "only the overdue task within its timeout is queued"
    assert Task.objects.get(pk=timed_out.pk).status == TaskStatus.PENDING


def test_sweep_expires_lapsed_membership_quota() -> None:
    lapsed = make_member(quota=4)
    User.objects.filter(pk=lapsed.pk).update(quota_expire_at=timezone.now() - timedelta(minutes=1))
    assert tasks_sweep().quota_expired == 1
    assert balance(lapsed) == 0
    assert QuotaLedger.objects.filter(user=lapsed, kind=LedgerKind.EXPIRE).count() == 1


def test_one_sweep_fails_a_backlog_larger_than_a_batch_oldest_first(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sweep, "SWEEP_BATCH", 4)
    owner = make_member(quota=10)
    # Ages out of order, so that creation order and age order differ.
    ages = [timedelta(hours=1, minutes=m) for m in (5, 30, 1, 50, 12, 3, 44, 20, 8)] + [timedelta(days=2)]
    tasks = [make_task(owner, age=age) for age in ages]
    assert tasks_sweep().failed_pending == 10
    assert failure_order() == [t.pk for t in sorted(tasks, key=lambda t: t.created_at)]


def test_the_sweep_stops_within_its_time_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    """A backlog far larger than one sweep can fail in its budget: the sweep stops on time, and
    the next ones go on where it stopped."""
    tasks = make_stale_tasks(100)
    # Batches of one: the budget is checked between batches, and 100 transactions take longer.
    monkeypatch.setattr(sweep, "SWEEP_BATCH", 1)
    monkeypatch.setattr(sweep, "SWEEP_TIME_BUDGET_SECONDS", 0.05)
    started = time.monotonic()
    failed = tasks_sweep().failed_pending
    assert 1 <= failed < len(tasks)
    assert time.monotonic() - started < 1.0
    assert Task.objects.filter(status=TaskStatus.PENDING).count() == len(tasks) - failed
    assert tasks_sweep().failed_pending >= 1, "the next sweep goes on"
    monkeypatch.setattr(sweep, "SWEEP_TIME_BUDGET_SECONDS", 40)
    tasks_sweep()
    assert not Task.objects.filter(status=TaskStatus.PENDING).exists()
    assert QuotaLedger.objects.filter(kind=LedgerKind.REFUND).count() == len(tasks)


# --- set-based failing (issue 10) ----------------------------------------------------------------


def stale_backlog(members: int, per_member: int) -> list[Task]:
    """`per_member` stale pending tasks for each of `members` members, ages interleaved across
    members so that a batch holds several refunds of one member."""
    owners = [make_member(quota=per_member + 3) for _ in range(members)]
    tasks = [make_task(owner) for _ in range(per_member) for owner in owners]
    for n, task in enumerate(tasks):
        Task.objects.filter(pk=task.pk).update(created_at=timezone.now() - timedelta(hours=2) + timedelta(seconds=n))
    return tasks


def data_statements(queries: list[dict[str, str]]) -> list[str]:
    control = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE SAVEPOINT")
    return [q["sql"] for q in queries if not q["sql"].upper().startswith(control)]


def counters_of(tasks: list[Task]) -> list[tuple[int, str, str, int]]:
    users = {t.user_id for t in tasks}
    rows = TaskCounter.objects.filter(user_id__in=users, n__gt=0).order_by("user_id", "status", "type")
    return list(rows.values_list("user_id", "status", "type", "n"))


def test_sweep_statements_per_batch_do_not_depend_on_the_batch_size(monkeypatch: pytest.MonkeyPatch) -> None:
    """One batch of 3 and one batch of 30 (several refunds per member in each) send the same
    statements: the sweep is set-based, not a loop over tasks."""
    counts = []
    for members, per_member in ((1, 3), (5, 6)):
        size = members * per_member
        stale_backlog(members, per_member)
        monkeypatch.setattr(sweep, "SWEEP_BATCH", size)
        with CaptureQueriesContext(connection) as captured:
            report = tasks_sweep()
        assert report.failed_pending == size
        counts.append(len(data_statements(captured.captured_queries)))
    assert counts[0] == counts[1], counts


def test_set_based_sweep_writes_what_task_fail_writes() -> None:
    tasks = stale_backlog(3, 4)
    assert tasks_sweep().failed_pending == 12
    for task in Task.objects.filter(pk__in=[t.pk for t in tasks]):
        assert task.status == TaskStatus.FAILED
        assert task.failure_code == FailureCode.TIMEOUT
        assert task.error_message == member_message(FailureCode.TIMEOUT) == "任务超时(10分钟未处理)"
        assert task.completed_at is not None and task.lease_until is None and task.next_attempt_at is None
        [event] = TaskEvent.objects.filter(task=task, to_status=TaskStatus.FAILED)
        assert (event.from_status, event.actor_id, event.reason) == (TaskStatus.PENDING, None, task.error_message)
    assert QuotaLedger.objects.filter(kind=LedgerKind.REFUND).count() == 12
    assert {balance(t.user) for t in tasks} == {7}
    assert task_counter_mismatches() == []
    assert {(status, n) for _, status, _, n in counters_of(tasks)} == {(TaskStatus.FAILED, 4)}


def test_balance_after_runs_through_several_refunds_of_one_member_in_a_batch() -> None:
    """Each refund row's balance_after is the balance right after it, in ledger order, even with
    many refunds of one member in one statement; and quota_remaining == sum(ledger.delta)."""
    tasks = stale_backlog(2, 5)
    tasks_sweep()
    for owner in {t.user for t in tasks}:
        assert balance(owner) == ledger_runs_right(owner) == 8
    assert quota_mismatches() == []


def test_sweep_refunds_a_task_already_refunded_never_again() -> None:
    """A pending task whose charge came back some other way (support's refund) fails without a
    second refund, and the other tasks of the batch are still refunded."""
    tasks = stale_backlog(1, 3)
    quota_refund(user_id=tasks[0].user_id, amount=1, task_id=tasks[0].pk, reason="support")
    assert tasks_sweep().failed_pending == 3
    assert QuotaLedger.objects.filter(kind=LedgerKind.REFUND).count() == 3
    assert balance(tasks[0].user) == 6
    assert quota_mismatches() == []


def test_stale_basic_clean_processing_fails_set_based_with_its_own_code() -> None:
    owner = make_member(quota=5)
    stuck = make_task(owner, TaskStatus.PROCESSING, age=timedelta(hours=2))
    recent = make_task(owner, TaskStatus.PROCESSING)
    report = tasks_sweep()
    assert (report.failed_pending, report.failed_processing) == (0, 1)
    failed = Task.objects.get(pk=stuck.pk)
    assert (failed.status, failed.failure_code, failed.error_message) == ("failed", "processing_timeout", "处理超时")
    assert TaskEvent.objects.get(task=stuck, to_status=TaskStatus.FAILED).from_status == TaskStatus.PROCESSING
    assert Task.objects.get(pk=recent.pk).status == TaskStatus.PROCESSING
    assert balance(owner) == 4
    assert task_counter_mismatches() == []


@pytest.mark.parametrize("attempt", range(2))
def test_sweeps_cancels_and_staff_racing_over_a_backlog_refund_each_task_once(attempt: int) -> None:
    """Three sweeps, workers picking up timed-out tasks, members cancelling and staff failing
    tasks of the same backlog, all at once: every task fails once with one event and one refund,
    balances and counters stay right."""
    tasks = stale_backlog(4, 5)
    staff = make_user(is_staff=True)
    picked = tasks[::3]
    # Patched once around the race: the patches are process-wide, the threads share them.
    with broker():
        results = race(
            tasks_sweep,
            tasks_sweep,
            tasks_sweep,
            *[lambda t=t: task_advance(task_id=t.pk, token=None) for t in tasks[1::3]],
            *[lambda t=t: task_cancel(task_id=t.pk, user=t.user) for t in picked[: len(picked) // 2]],
            *[
                lambda t=t: task_update_status(task_id=t.pk, status=TaskStatus.FAILED, actor=staff)
                for t in picked[len(picked) // 2 :]
            ],
        )
    assert not [r for r in results if isinstance(r, Exception) and getattr(r, "code", None) != 4005], results
    ids = [t.pk for t in tasks]
    assert Task.objects.filter(pk__in=ids, status=TaskStatus.FAILED).count() == len(tasks)
    assert TaskEvent.objects.filter(task_id__in=ids, to_status=TaskStatus.FAILED).count() == len(tasks)
    assert QuotaLedger.objects.filter(task_id__in=ids, kind=LedgerKind.REFUND).count() == len(tasks)
    assert {balance(t.user) for t in tasks} == {8}
    assert quota_mismatches() == []
    assert task_counter_mismatches() == []


def test_quota_moves_racing_the_sweep_on_the_same_member_keep_balances_right() -> None:
    """Support adjusting a member's quota while the sweep refunds it: the balance and every row's
    balance_after stay consistent (the sweep locks the member before it reads the balance)."""
    tasks = stale_backlog(1, 20)
    owner = tasks[0].user

    def adjust() -> object:
        return quota_adjust(user_id=owner.pk, delta=-1, reason="support correction")

    results = race(tasks_sweep, adjust, adjust, adjust)
    assert not [r for r in results if isinstance(r, Exception)], results
    assert balance(owner) == ledger_runs_right(owner) == 23 - 3
    assert quota_mismatches() == []
    assert task_counter_mismatches() == []


def ledger_runs_right(owner: User) -> int:
    """Asserts every balance_after of the member is the running sum of its ledger; returns the sum."""
    running = 0
    for delta, balance_after in (
        QuotaLedger.objects.filter(user=owner).order_by("id").values_list("delta", "balance_after")
    ):
        running += delta
        assert balance_after == running
    return running


def in_thread(work: Callable[[], object]) -> Callable[[], object]:
    """Starts `work` in a thread of its own (its own database connection); the returned function
    waits for it and gives what it returned or raised."""
    result: list[object] = [None]

    def run() -> None:
        try:
            result[0] = work()
        except Exception as exc:
            result[0] = exc
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()

    def outcome() -> object:
        thread.join(timeout=60)
        assert not thread.is_alive(), "still running"
        return result[0]

    return outcome


def sweep_waiting_for_a_lock() -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT COUNT(*) FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND wait_event_type = 'Lock' "
            "AND query LIKE '%WITH picked AS%'"
        )
        return bool(cursor.fetchone()[0])


def test_an_order_holding_the_member_while_the_sweep_waits_for_it_finishes_and_both_books_stay_right(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An order has charged its member (row locked, balance moved) and not yet counted its task
    when the sweep's statement, begun before the charge commits, reaches the member: the sweep
    waits for the member's row without holding any of the member's counters, so the order counts
    its task and commits (no deadlock); the sweep then refunds from the balance after the charge."""
    tasks = stale_backlog(1, 3)
    owner = tasks[0].user
    charged, go_on = threading.Event(), threading.Event()
    count = creation.task_counted

    def count_once_released(**kwargs: Any) -> None:
        charged.set()
        assert go_on.wait(20)
        count(**kwargs)

    monkeypatch.setattr(creation, "task_counted", count_once_released)
    with public_dns(only=INPUT_HOST), broker():
        order = in_thread(
            lambda: task_create(user=owner, task_type=TaskType.BASIC_CLEAN, input_image_url=INPUT_URL, params={})
        )
        assert charged.wait(20)
        swept = in_thread(tasks_sweep)
        wait_for(sweep_waiting_for_a_lock, timeout=20, interval=0.02)
        go_on.set()
        created, report = order(), swept()
    assert not isinstance(created, Exception), created
    assert isinstance(report, SweepReport) and report.failed_pending == 3, report
    assert balance(owner) == ledger_runs_right(owner) == 3 - 1 + 3
    assert quota_mismatches() == []
    assert task_counter_mismatches() == []


@pytest.mark.parametrize("attempt", range(2))
def test_orders_racing_sweeps_on_the_same_members_keep_balances_and_counters_right(attempt: int) -> None:
    """Orders lock their member, then write its counters; the sweep locks every member of a batch,
    then writes their counters. Two sweeps and two orders per member at once: nothing deadlocks,
    every stale task is refunded once."""
    tasks = stale_backlog(4, 5)
    owners = list({t.user_id: t.user for t in tasks}.values())
    with public_dns(only=INPUT_HOST), broker():
        results = race(
            tasks_sweep,
            tasks_sweep,
            *[
                lambda owner=owner: task_create(
                    user=owner, task_type=TaskType.BASIC_CLEAN, input_image_url=INPUT_URL, params={}
                )
                for owner in owners * 2
            ],
        )
    assert not [r for r in results if isinstance(r, Exception)], results
    ids = [t.pk for t in tasks]
    assert Task.objects.filter(pk__in=ids, status=TaskStatus.FAILED).count() == len(tasks)
    assert QuotaLedger.objects.filter(task_id__in=ids, kind=LedgerKind.REFUND).count() == len(tasks)
    for owner in owners:
        assert balance(owner) == ledger_runs_right(owner) == 8 - 2
    assert quota_mismatches() == []
    assert task_counter_mismatches() == []


def test_without_redis_the_sweep_fails_and_refunds_all_the_same(settings: Any) -> None:
    """The embedded default has no Redis to announce the failures on: nobody is told, nothing breaks."""
    settings.TASK_EVENTS_REDIS_URL = ""
    tasks = make_stale_tasks(3)
    assert tasks_sweep().failed_pending == 3
    assert {t.status for t in Task.objects.filter(pk__in=[t.pk for t in tasks])} == {TaskStatus.FAILED}
    assert balance(tasks[0].user) == 3 and quota_mismatches() == []


class SweepClock:
    """The sweep's clock (its `time` module), moved on only by the test."""

    def __init__(self) -> None:
        self.now = 0.0

    def monotonic(self) -> float:
        return self.now


@contextmanager
def slow_runninghub(settings: Any, clock: SweepClock, *, takes: float) -> Iterator[list[str]]:
    """RunningHub on loopback: every call takes `takes` seconds of the sweep's clock and fails with
    HTTP 500. Yields the paths called."""
    calls: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            calls.append(self.path)
            clock.now += takes
            self.send_response(500)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    settings.RUNNINGHUB_BASE_URL = f"http://127.0.0.1:{server.server_address[1]}"
    runninghub_client.cache_clear()
    try:
        yield calls
    finally:
        server.shutdown()
        server.server_close()
        runninghub_client.cache_clear()


def test_a_slow_runninghub_ends_the_sweep_within_its_budget_and_the_next_sweep_goes_on(
    settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Timed-out RunningHub jobs get their last look one by one, oldest first; once a look has used
    up the time budget, the sweep looks at no more of them and leaves them processing."""
    owner = make_member(quota=5)
    jobs = [
        make_task(owner, TaskStatus.PROCESSING, task_type=TaskType.MODEL_POSE12, vendor_task_id=f"1990{n}", age=age)
        for n, age in enumerate([timedelta(hours=2), timedelta(hours=3), timedelta(hours=2, minutes=30)])
    ]
    oldest = jobs[1]
    clock = SweepClock()
    monkeypatch.setattr(sweep, "time", clock)
    with slow_runninghub(settings, clock, takes=sweep.SWEEP_TIME_BUDGET_SECONDS + 1) as calls, broker():
        assert tasks_sweep().failed_processing == 1
        assert calls == ["/task/openapi/outputs"], "one last look, then the budget was spent"
        assert Task.objects.get(pk=oldest.pk).status == TaskStatus.FAILED
        assert {Task.objects.get(pk=t.pk).status for t in jobs if t != oldest} == {TaskStatus.PROCESSING}

        monkeypatch.setattr(sweep, "time", time)
        assert tasks_sweep().failed_processing == 2
    assert {Task.objects.get(pk=t.pk).failure_code for t in jobs} == {FailureCode.PROCESSING_TIMEOUT}
    assert balance(owner) == 5 and quota_mismatches() == []
