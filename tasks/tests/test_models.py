"""The hot look-ups use their indexes, checked on PostgreSQL's plans of the very statements the
product sends (captured around the real selector, sweep and webhook calls); BENCHMARKS.md has
them on 100k rows."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import User
from accounts.tests.factories import make_member
from tasks.models import Task, TaskStatus, TaskType
from tasks.selectors import task_list
from tasks.sweep import tasks_sweep
from tasks.tests.factories import broker, make_task

pytestmark = pytest.mark.django_db


def sent(call: Callable[[], Any]) -> list[str]:
    """The SQL statements `call` sent, as PostgreSQL received them."""
    with CaptureQueriesContext(connection) as captured:
        call()
    return [q["sql"] for q in captured.captured_queries]


def plan(sql: str) -> str:
    with connection.cursor() as cursor:
        # Tiny test tables make a sequential scan cheapest; forbid it to see which index is usable.
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(f"EXPLAIN {sql}")
        return "\n".join(row[0] for row in cursor.fetchall())


def the_first(statements: list[str], *fragments: str) -> str:
    matching = [s for s in statements if all(f in s for f in fragments)]
    assert matching, f"a statement with {fragments} expected in:\n" + "\n".join(statements)
    return matching[0]


@pytest.fixture
def owner() -> User:
    user = make_member(quota=100)
    Task.objects.bulk_create(
        Task(user=user, type="basic_clean", status="success", input_image_url="u", cost=1) for _ in range(2000)
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE tasks_task")
    return user


def test_user_list_newest_first_uses_its_index(owner: User) -> None:
    statements = sent(lambda: task_list(user=owner, limit=20, offset=0))
    page = the_first(statements, 'FROM "tasks_task"', "ORDER BY", "LIMIT")
    assert "Index Scan using task_user_recent" in plan(page)
    sorts = [line.strip() for line in plan(page).splitlines() if line.strip().startswith("->  Sort")]
    assert not sorts, "the page is read in index order, not sorted from all the member's tasks"


def test_sweep_lookups_use_their_indexes(owner: User) -> None:
    make_task(owner, age=timedelta(hours=1))
    overdue = make_task(owner)
    Task.objects.filter(pk=overdue.pk).update(next_attempt_at=timezone.now() - timedelta(minutes=5))
    with broker():
        statements = sent(tasks_sweep)
    stale_pending = the_first(statements, "WITH picked", "= 'pending'", '"tasks_task"."created_at" <', "SKIP LOCKED")
    # With statistics the planner may prefer the small partial index of active tasks; either way no
    # statement of the sweep reads the whole table (with sequential scans off, one would show).
    assert "Seq Scan on tasks_task" not in plan(stale_pending)
    requeue = the_first(statements, '"tasks_task"."next_attempt_at" <', "SKIP LOCKED")
    assert "Seq Scan on tasks_task" not in plan(requeue)
    requeued_at = Task.objects.get(pk=overdue.pk).next_attempt_at
    assert requeued_at is not None and requeued_at > timezone.now() - timedelta(minutes=1), "it was requeued"


def test_vendor_lookup_uses_its_index(owner: User, settings: Any) -> None:
    make_task(owner, TaskStatus.PROCESSING, task_type=TaskType.MODEL_POSE12, vendor_task_id="1234567890123456789")
    # Many jobs at RunningHub at once, with planner statistics: the webhook's look-up must then
    # find its task by the vendor id, not walk the processing tasks.
    Task.objects.bulk_create(
        Task(user=owner, type="model_pose12", status="processing", input_image_url="u", cost=1, vendor_task_id=str(n))
        for n in range(500)
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE tasks_task")
    hook = f"/api/webhooks/runninghub?token={settings.RUNNINGHUB_WEBHOOK_SECRET}"
    body = {"taskId": "1234567890123456789", "eventData": '{"code": 0, "data": []}'}
    with broker() as queued:
        statements = sent(lambda: APIClient().post(hook, body, format="json"))
    assert len(queued.task_ids()) == 1, "the webhook found the task"
    lookup = the_first(statements, '"tasks_task"."vendor_task_id"')
    assert "task_vendor_id" in plan(lookup)
