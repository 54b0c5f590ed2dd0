"""The tasks app's management commands."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from tasks.models import Task, TaskStatus
from tasks.tests.factories import make_stale_tasks

pytestmark = pytest.mark.django_db(transaction=True)


def test_cleanup_command_dry_run_and_run(capsys: pytest.CaptureFixture[str]) -> None:
    make_stale_tasks(3)
    call_command("cleanup_timeout_tasks", "--dry-run")
    assert "would fail 3 task(s)" in capsys.readouterr().out
    assert Task.objects.filter(status=TaskStatus.PENDING).count() == 3
    call_command("cleanup_timeout_tasks")
    assert "failed 3 task(s)" in capsys.readouterr().out
    assert set(Task.objects.values_list("error_message", flat=True)) == {"任务超时(10分钟未处理)"}
