"""The zip of a task's stored results (tasks/archive.py): only a success, only files of this
service's own storage."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from rest_framework.test import APIClient

from accounts.models import User
from core.tests.helpers import error_of
from tasks.models import TaskStatus
from tasks.tests.factories import make_task

pytestmark = pytest.mark.django_db


def test_results_held_elsewhere_are_not_zipped(client_for: Callable[[User], APIClient], member: User) -> None:
    """A success whose result URLs are not on this service's storage (an older task, or one a
    support agent finished with outside URLs) is refused, not zipped from wherever they point."""
    task = make_task(member, TaskStatus.SUCCESS)
    assert task.result_urls[0].startswith("https://cdn.example.com/")
    response = client_for(member).get(f"/api/task/{task.pk}/archive")
    assert error_of(response) == (409, 4005)
    assert response.json()["error"]["message"] == "该任务的结果不在本服务的存储中"
