"""Per-member task counters (tasks/counters.py) and the list they serve: `total` is a sum of
counters kept by every transition, the page costs the same statements whatever the page size and
history, and `after` pages through a deep history by keyset."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import User
from accounts.tests.factories import make_member
from core.tests.helpers import error_of
from tasks.actions import task_cancel
from tasks.counters import task_count, task_counter_mismatches, task_counters_rebuild
from tasks.models import Task, TaskCounter, TaskStatus, TaskType
from tasks.selectors import task_list
from tasks.sweep import tasks_sweep
from tasks.tests.factories import make_task

pytestmark = pytest.mark.django_db

Client = Callable[[User], APIClient]


def history(user: User, count: int) -> list[Task]:
    """`count` finished tasks, one a minute back from now (bulk-inserted, counters rebuilt)."""
    now = timezone.now()
    tasks = [
        Task(
            user=user,
            type=TaskType.BASIC_CLEAN if n % 3 else TaskType.MODEL_POSE12,
            status=TaskStatus.SUCCESS if n % 4 else TaskStatus.FAILED,
            input_image_url="https://images.example.com/a.jpg",
            cost=1,
        )
        for n in range(count)
    ]
    Task.objects.bulk_create(tasks)
    for n, task in enumerate(tasks):
        Task.objects.filter(pk=task.pk).update(created_at=now - timedelta(minutes=n + 1))
    task_counters_rebuild()
    return list(Task.objects.filter(user=user).order_by("-created_at", "-id"))


def data_statements(captured: CaptureQueriesContext) -> list[str]:
    control = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE SAVEPOINT")
    return [q["sql"] for q in captured.captured_queries if not q["sql"].upper().startswith(control)]


def test_every_transition_keeps_the_counters() -> None:
    owner = make_member(quota=20)
    make_task(owner)
    make_task(owner, TaskStatus.PROCESSING)
    make_task(owner, TaskStatus.SUCCESS)
    make_task(owner, TaskStatus.FAILED)
    make_task(owner, TaskStatus.SUCCESS, task_type=TaskType.MODEL_POSE12)
    cancelled = make_task(owner)
    task_cancel(task_id=cancelled.pk, user=owner)
    make_task(owner, age=timedelta(hours=1))
    assert tasks_sweep().failed_pending == 1
    assert task_counter_mismatches() == []
    assert task_count(user_id=owner.pk) == 7
    assert task_count(user_id=owner.pk, status=TaskStatus.FAILED) == 3
    assert task_count(user_id=owner.pk, status=TaskStatus.SUCCESS, task_type=TaskType.BASIC_CLEAN) == 1
    assert task_count(user_id=owner.pk, task_type=TaskType.MODEL_POSE12) == 1


def test_list_total_comes_from_the_counters(client_for: Client) -> None:
    owner = make_member(quota=5)
    history(owner, 10)
    TaskCounter.objects.filter(user=owner, status=TaskStatus.SUCCESS).update(n=1000)
    answer = client_for(owner).get("/api/task/list", {"status": "success"}).json()["data"]
    assert answer["total"] == 2000, "the total is the counters' sum, not a COUNT"


@pytest.mark.parametrize("limit", [1, 100])
@pytest.mark.parametrize("tasks", [1, 150])
def test_list_statements_do_not_depend_on_page_size_or_history(client_for: Client, limit: int, tasks: int) -> None:
    owner = make_member(quota=5)
    history(owner, tasks)
    client = client_for(owner)
    newest = Task.objects.filter(user=owner).order_by("-created_at").values_list("pk", flat=True)[0]
    queries: list[dict[str, str]] = [
        {"limit": str(limit)},
        {"limit": str(limit), "status": "success", "type": "basic_clean"},
        {"limit": str(limit), "after": str(newest)},
    ]
    counts = []
    for query in queries:
        with CaptureQueriesContext(connection) as captured:
            response = client.get("/api/task/list", query)
        assert response.status_code == 200
        counts.append(len(data_statements(captured)))
    # user, counters, page; and the cursor's row when `after` is given
    assert counts == [3, 3, 4], counts


def test_after_walks_the_whole_history_like_offset(client_for: Client) -> None:
    owner = make_member(quota=5)
    expected = [str(t.pk) for t in history(owner, 25)]
    # Two tasks created at the same instant: the id breaks the tie in both kinds of paging.
    Task.objects.filter(pk__in=expected[10:12]).update(created_at=Task.objects.get(pk=expected[10]).created_at)
    expected = [
        str(pk) for pk in Task.objects.filter(user=owner).order_by("-created_at", "-id").values_list("pk", flat=True)
    ]
    client = client_for(owner)
    seen: list[str] = []
    after: str | None = None
    while True:
        query: dict[str, Any] = {"limit": 7, **({"after": after} if after else {})}
        page = client.get("/api/task/list", query).json()["data"]
        assert page["total"] == 25
        seen += [t["id"] for t in page["tasks"]]
        after = page["nextAfter"]
        if after is None:
            break
        assert after == seen[-1]
    assert seen == expected
    by_offset = [t["id"] for t in client.get("/api/task/list", {"limit": 7, "offset": 7}).json()["data"]["tasks"]]
    assert by_offset == expected[7:14]


def test_after_must_be_one_of_the_members_tasks(client_for: Client) -> None:
    owner, stranger = make_member(), make_member()
    [theirs] = history(stranger, 1)
    client = client_for(owner)
    assert error_of(client.get("/api/task/list", {"after": str(theirs.pk)})) == (400, 4002)
    assert error_of(client.get("/api/task/list", {"after": str(uuid.uuid4())})) == (400, 4002)
    assert error_of(client.get("/api/task/list", {"after": "not-a-uuid"})) == (400, 4002)


def test_reconcile_task_counters_reports_and_fixes_drift(capsys: pytest.CaptureFixture[str]) -> None:
    owner = make_member(quota=5)
    history(owner, 5)
    call_command("reconcile_task_counters")
    assert "ok" in capsys.readouterr().out
    TaskCounter.objects.filter(user=owner).update(n=99)
    with pytest.raises(SystemExit) as exited:
        call_command("reconcile_task_counters")
    assert exited.value.code == 1
    assert "counter 99" in capsys.readouterr().err
    call_command("reconcile_task_counters", "--fix")
    assert task_counter_mismatches() == []
    assert task_count(user_id=owner.pk) == 5


def test_a_deep_after_page_starts_its_index_scan_at_the_cursor() -> None:
    """The keyset page reads from the cursor on through the (user, -created_at) index, not from
    the member's newest task (which is what made a deep `after` page as slow as an offset)."""
    owner = make_member(quota=5)
    tasks = history(owner, 150)
    with CaptureQueriesContext(connection) as captured:
        task_list(user=owner, limit=20, offset=0, after=tasks[120].pk)
    page_sql = captured.captured_queries[-1]["sql"]
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(f"EXPLAIN (FORMAT JSON) {page_sql}")
        plan = json.dumps(cursor.fetchone()[0])
    assert "task_user_recent" in plan
    assert re.search(r'"Index Cond": "\(\(user_id = \d+\) AND \(created_at <= ', plan), plan
