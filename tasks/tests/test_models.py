"""The hot look-ups use their indexes (checked on PostgreSQL's plans; BENCHMARKS.md has them on
100k rows)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.db.models import QuerySet
from django.utils import timezone

from accounts.tests.factories import make_member
from tasks.models import ACTIVE_STATUSES, Task, TaskStatus

pytestmark = pytest.mark.django_db


def plan(queryset: QuerySet[Task]) -> str:
    sql, params = queryset.query.sql_with_params()
    with connection.cursor() as cursor:
        # Tiny test tables make a sequential scan cheapest; forbid it to see which index is usable.
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(f"EXPLAIN {sql}", params)
        return "\n".join(row[0] for row in cursor.fetchall())


@pytest.fixture
def tasks() -> None:
    user = make_member()
    Task.objects.bulk_create(Task(user=user, type="basic_clean", input_image_url="u", cost=1) for _ in range(50))


def test_user_list_newest_first_uses_its_index(tasks: None) -> None:
    user = Task.objects.first().user  # type: ignore[union-attr]
    assert "task_user_recent" in plan(Task.objects.filter(user=user).order_by("-created_at")[:20])


def test_sweep_lookups_use_their_indexes(tasks: None) -> None:
    old = timezone.now() - timedelta(minutes=10)
    assert "task_status_created" in plan(Task.objects.filter(status=TaskStatus.PENDING, created_at__lt=old))
    due = Task.objects.filter(status__in=ACTIVE_STATUSES, next_attempt_at__lt=old)
    assert "task_active_due" in plan(due)


def test_vendor_lookup_uses_its_index(tasks: None) -> None:
    assert "task_vendor_id" in plan(Task.objects.filter(vendor_task_id="1234567890123456789"))
