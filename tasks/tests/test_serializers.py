"""Input checks of the task API (tasks/serializers.py): the type (4001), params and their
defaults, list queries and the staff status body (4002), all refused before any charge."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from rest_framework.test import APIClient

from accounts.models import User
from accounts.tests.factories import balance
from core.tests.helpers import error_of
from tasks.tests.factories import post_create

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
