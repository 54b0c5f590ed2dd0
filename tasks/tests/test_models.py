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


def the_one(statements: list[str], *fragments: str) -> str:
    matching = [s for s in statements if all(f in s for f in fragments)]
    assert len(matching) == 1, f"one statement with {fragments} expected in:\n" + "\n".join(statements)
    return matching[0]


@pytest.fixture
def owner() -> User:
    user = make_member(quota=100)
    Task.objects.bulk_create(Task(user=user, type="basic_clean", input_image_url="u", cost=1) for _ in range(50))
    return user


def test_user_list_newest_first_uses_its_index(owner: User) -> None:
    statements = sent(lambda: task_list(user=owner, limit=20, offset=0))
    page = the_one(statements, 'FROM "tasks_task"', "ORDER BY", "LIMIT 20")
    assert "task_user_recent" in plan(page)


def test_sweep_lookups_use_their_indexes(owner: User) -> None:
    make_task(owner, age=timedelta(hours=1))
    overdue = make_task(owner)
    Task.objects.filter(pk=overdue.pk).update(next_attempt_at=timezone.now() - timedelta(minutes=5))
    with broker():
        statements = sent(tasks_sweep)
    stale_pending = the_one(statements, "'pending'", '"tasks_task"."created_at" <', "SKIP LOCKED")
    assert "task_status_created" in plan(stale_pending)
    requeue = the_one(statements, '"tasks_task"."next_attempt_at" <', "SKIP LOCKED")
    assert "task_active_due" in plan(requeue)
    assert Task.objects.get(pk=overdue.pk).next_attempt_at > timezone.now() - timedelta(minutes=1), "it was requeued"


def test_vendor_lookup_uses_its_index(owner: User, settings: Any) -> None:
    make_task(owner, TaskStatus.PROCESSING, task_type=TaskType.MODEL_POSE12, vendor_task_id="1234567890123456789")
    hook = f"/api/webhooks/runninghub?token={settings.RUNNINGHUB_WEBHOOK_SECRET}"
    from rest_framework.test import APIClient

    body = {"taskId": "1234567890123456789", "eventData": '{"code": 0, "data": []}'}
    with broker() as queued:
        statements = sent(lambda: APIClient().post(hook, body, format="json"))
    assert len(queued.task_ids()) == 1, "the webhook found the task"
    lookup = the_one(statements, '"tasks_task"."vendor_task_id" =')
    assert "task_vendor_id" in plan(lookup)
