"""Input checks of the task API (tasks/serializers.py): the type (4001), params and their
defaults, list queries and the staff status body (4002), all refused before any charge."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from rest_framework import serializers
from rest_framework.test import APIClient

from accounts.models import User
from accounts.tests.factories import balance
from core.tests.helpers import error_of
from tasks.models import Task, TaskStatus, TaskType
from tasks.progress import task_progress, typical_run_times_refresh
from tasks.selectors import task_with_refund
from tasks.serializers import TaskOut
from tasks.tests.factories import make_task, post_create

pytestmark = pytest.mark.django_db

Client = Callable[[User], APIClient]


def test_create_model_pose12_fills_default_params(client_for: Client, member: User, uploaded: str) -> None:
    response = post_create(client_for(member), {"type": "model_pose12", "inputImageUrl": uploaded})
    assert response.status_code == 201
    assert response.json()["data"]["params"] == {"scene": "street", "category": "dress"}
    body = {"type": "model_pose12", "inputImageUrl": uploaded, "params": {"scene": "studio", "category": "coat"}}
    assert post_create(client_for(member), body).json()["data"]["params"] == {"scene": "studio", "category": "coat"}


@pytest.mark.parametrize("task_type", ["", "upscale", None, 5, ["basic_clean"]])
def test_unknown_type_is_4001(client_for: Client, member: User, uploaded: str, task_type: Any) -> None:
    response = post_create(client_for(member), {"type": task_type, "inputImageUrl": uploaded})
    assert error_of(response) == (400, 4001)
    assert response.json()["error"]["message"] == "无效的任务类型"
    assert balance(member) == 10


@pytest.mark.parametrize(
    "task_type,params",
    [
        ("model_pose12", {"scene": "beach"}),
        ("model_pose12", {"category": "hat"}),
        ("model_pose12", {"scene": "street", "colour": "red"}),
        ("model_pose12", "street"),
        ("basic_clean", {"scene": "street"}),
    ],
)
def test_bad_params_are_4002(client_for: Client, member: User, uploaded: str, task_type: str, params: Any) -> None:
    response = post_create(client_for(member), {"type": task_type, "inputImageUrl": uploaded, "params": params})
    assert error_of(response) == (400, 4002)
    assert balance(member) == 10


@pytest.mark.parametrize(
    "query",
    [
        {"limit": 0},
        {"limit": 101},
        {"limit": "ten"},
        {"offset": -1},
        {"status": "done"},
        {"status": ""},
        {"type": "upscale"},
        {"type": ""},
    ],
)
def test_list_bad_query_is_4002(client_for: Client, member: User, query: dict[str, Any]) -> None:
    assert error_of(client_for(member).get("/api/task/list", query)) == (400, 4002)


@pytest.mark.parametrize(
    "body", [{"status": "done"}, {}, {"status": "success", "resultUrls": "x"}, {"status": "failed", "errorMessage": 3}]
)
def test_staff_bad_body_is_4002(client_for: Client, staff: User, own_task: dict[str, Any], body: Any) -> None:
    assert error_of(client_for(staff).put(f"/api/task/{own_task['id']}/status", body, format="json")) == (400, 4002)


def test_the_written_out_task_answer_equals_the_declared_fields(member: User) -> None:
    """TaskOut writes its values out by hand for speed; DRF's generic walk over the declared fields
    (which also make the schema) must give the same answer for tasks in every state."""
    member.quota_remaining = 100
    member.save(update_fields=["quota_remaining"])
    made = [
        make_task(member, status, task_type=task_type, age=timedelta(minutes=3))
        for status in TaskStatus.values
        for task_type in TaskType
    ]
    made.append(make_task(member, TaskStatus.PENDING, batch_id=made[0].id, batch_index=1))
    made.append(make_task(member, TaskStatus.FAILED, retry_of=made[1], error_message="超时"))
    typical_run_times_refresh()
    answers = []
    for task in [task_with_refund(task_id=t.id) for t in made] + [Task.objects.get(pk=made[0].id)]:
        progress = {"progress": task_progress([task])}  # one clock for both
        written = TaskOut(task, context=progress).data
        walked = serializers.Serializer.to_representation(TaskOut(task, context=progress), task)
        assert written == walked
        assert [type(value) for value in written.values()] == [type(value) for value in walked.values()]
        answers.append(written)
    for name in TaskOut().fields:
        assert len({repr(answer[name]) for answer in answers}) > 1 or name in ("inputImageUrl", "quotaCharged")
