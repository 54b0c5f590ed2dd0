"""Reads of tasks (tasks/selectors.py): a member sees only their own tasks (4003, 4004), newest
first with filters and paging, each read with its refund in a fixed number of queries."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from rest_framework.test import APIClient

from accounts.models import User
from accounts.tests.factories import make_member
from core.tests.helpers import error_of
from tasks.models import Task
from tasks.tests.factories import post_create

pytestmark = pytest.mark.django_db

Client = Callable[[User], APIClient]


def test_get_own_task(
    client_for: Client, member: User, own_task: dict[str, Any], django_assert_max_num_queries: Any
) -> None:
    client = client_for(member)
    with django_assert_max_num_queries(2):
        response = client.get(f"/api/task/{own_task['id']}")
    assert response.status_code == 200
    assert response.json()["data"] == own_task


def test_other_users_task_is_4003_and_unknown_is_4004(client_for: Client, own_task: dict[str, Any]) -> None:
    stranger = client_for(make_member())
    forbidden = stranger.get(f"/api/task/{own_task['id']}")
    assert error_of(forbidden) == (403, 4003)
    assert forbidden.json()["error"]["message"] == "无权访问该任务"
    assert error_of(stranger.post(f"/api/task/{own_task['id']}/cancel")) == (403, 4003)
    missing = stranger.get(f"/api/task/{uuid.uuid4()}")
    assert error_of(missing) == (404, 4004)
    assert missing.json()["error"]["message"] == "任务不存在"


def test_list_newest_first_with_filters_and_paging(client_for: Client, member: User, uploaded: str) -> None:
    client = client_for(member)
    clean = {"type": "basic_clean", "inputImageUrl": uploaded}
    ids = [post_create(client, clean).json()["data"]["id"] for _ in range(3)]
    ids.append(post_create(client, {"type": "model_pose12", "inputImageUrl": uploaded}).json()["data"]["id"])
    post_create(client_for(make_member()), clean)
    page = client.get("/api/task/list", {"limit": 2, "offset": 1}).json()["data"]
    assert page["total"] == 4 and page["limit"] == 2 and page["offset"] == 1
    assert [t["id"] for t in page["tasks"]] == ids[::-1][1:3]
    default = client.get("/api/task/list").json()["data"]
    assert default["limit"] == 10 and default["offset"] == 0 and len(default["tasks"]) == 4
    only_pose = client.get("/api/task/list", {"type": "model_pose12"}).json()["data"]
    assert [t["id"] for t in only_pose["tasks"]] == [ids[3]]
    assert client.get("/api/task/list", {"status": "success"}).json()["data"]["total"] == 0
    assert client.get("/api/task/list", {"offset": 50}).json()["data"]["tasks"] == []


@pytest.mark.parametrize("count", [1, 30])
def test_list_query_count_does_not_grow(
    client_for: Client, member: User, uploaded: str, count: int, django_assert_max_num_queries: Any
) -> None:
    tasks = [Task(user=member, type="basic_clean", input_image_url=uploaded, cost=1) for _ in range(count)]
    Task.objects.bulk_create(tasks)
    client = client_for(member)
    with django_assert_max_num_queries(3):
        response = client.get("/api/task/list", {"limit": 100})
    assert len(response.json()["data"]["tasks"]) == count


@pytest.mark.django_db(transaction=True)
def test_without_redis_a_long_poll_looks_again_and_sees_the_change(
    client_for: Client, member: User, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The embedded default has no Redis to announce changes: the waiting request re-reads the
    task every POLL_SECONDS and answers at the first look that sees it changed."""
    import time

    from tasks.lifecycle import task_start
    from tasks.tests.factories import broker, make_task

    settings.TASK_EVENTS_REDIS_URL = ""
    task = make_task(member)
    pauses: list[float] = []
    real_sleep = time.sleep

    def pause(seconds: float) -> None:
        # The task changes during the first pause, i.e. after the request read it once.
        if not pauses:
            with broker():
                task_start(task_id=task.pk)
        pauses.append(seconds)
        real_sleep(seconds)

    monkeypatch.setattr("tasks.selectors.time.sleep", pause)
    started = time.monotonic()
    response = client_for(member).get(f"/api/task/{task.pk}", {"wait": 10})
    assert response.json()["data"]["status"] == "processing"
    assert pauses == [1.0], "one look after one pause saw the change"
    assert time.monotonic() - started < 5, "answered at that look, not at the end of the wait"


@pytest.mark.django_db(transaction=True)
def test_without_redis_a_long_poll_with_no_change_answers_when_the_wait_is_over(
    client_for: Client, member: User, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A look that finds the task as it was goes on waiting; the last pause ends at the deadline,
    and the answer is the task as it is then."""
    import time

    from tasks.tests.factories import make_task

    settings.TASK_EVENTS_REDIS_URL = ""
    task = make_task(member)
    pauses: list[float] = []
    real_sleep = time.sleep

    def pause(seconds: float) -> None:
        pauses.append(seconds)
        real_sleep(seconds)

    monkeypatch.setattr("tasks.selectors.time.sleep", pause)
    started = time.monotonic()
    response = client_for(member).get(f"/api/task/{task.pk}", {"wait": 2})
    assert response.json()["data"]["status"] == "pending"
    assert len(pauses) == 2 and pauses[0] == 1.0 and 0 < pauses[1] <= 1.0, pauses
    assert 2.0 <= time.monotonic() - started < 4
