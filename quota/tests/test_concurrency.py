"""Real threads against PostgreSQL: the row lock and the unique constraint, not luck, decide."""

import threading
import uuid
from collections import Counter
from collections.abc import Callable

import pytest
from django.db import connection

from accounts.tests.factories import make_member
from core import errors
from quota.models import LedgerKind, QuotaLedger
from quota.selectors import quota_mismatches
from quota.services import quota_deduct, quota_refund

pytestmark = pytest.mark.django_db(transaction=True)


# PostgreSQL here allows 100 connections; the test holds some, so at most this many threads are
# inside the database at once (all of them still start together and race for the same row).
MAX_CONNECTIONS = 50


def run_in_threads(count: int, work: Callable[[], object]) -> Counter[str]:
    outcomes: Counter[str] = Counter()
    lock = threading.Lock()
    barrier = threading.Barrier(count)
    connections = threading.BoundedSemaphore(MAX_CONNECTIONS)

    def runner() -> None:
        try:
            barrier.wait()
            with connections:
                try:
                    result = work()
                finally:
                    connection.close()
            outcome = "ok" if result is not None else "none"
        except errors.ApplicationError as exc:
            outcome = str(exc.code)
        except Exception as exc:
            outcome = type(exc).__name__
        with lock:
            outcomes[outcome] += 1

    threads = [threading.Thread(target=runner) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return outcomes


def test_100_threads_deduct_from_40() -> None:
    user = make_member(quota=40)
    outcomes = run_in_threads(100, lambda: quota_deduct(user_id=user.pk, amount=1, task_id=uuid.uuid4()))
    assert outcomes == Counter({"ok": 40, "1003": 60})
    user.refresh_from_db()
    assert user.quota_remaining == 0
    assert QuotaLedger.objects.filter(user=user, kind=LedgerKind.DEDUCT).count() == 40
    assert quota_mismatches() == []


def test_50_threads_refund_the_same_task_once() -> None:
    user = make_member(quota=5)
    task_id = uuid.uuid4()
    quota_deduct(user_id=user.pk, amount=1, task_id=task_id)
    outcomes = run_in_threads(50, lambda: quota_refund(user_id=user.pk, amount=1, task_id=task_id, reason="race"))
    assert outcomes == Counter({"ok": 1, "none": 49})
    assert QuotaLedger.objects.filter(task_id=task_id, kind=LedgerKind.REFUND).count() == 1
    user.refresh_from_db()
    assert user.quota_remaining == 5
    assert quota_mismatches() == []
