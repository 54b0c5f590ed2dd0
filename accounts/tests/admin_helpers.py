"""Users and tasks for the admin console tests (accounts, quota and tasks)."""

from __future__ import annotations

from datetime import timedelta
from importlib import import_module
from typing import Any
from unittest import mock

from django.apps import apps
from django.contrib.auth.models import Group
from django.test import Client
from django.utils import timezone

from accounts.models import User
from accounts.tests.factories import make_user
from tasks.models import Task, TaskStatus
from tasks.services import task_create, task_fail, task_start, task_succeed

INPUT_URL = "https://images.example.com/p.png"


def support_group() -> Group:
    """The group the data migration made; transactional tests flush it, so make it again then."""
    group = Group.objects.filter(name="support").first()
    if group is None:
        import_module("accounts.migrations.0003_support_group").create_support_group(apps, None)
        group = Group.objects.get(name="support")
    return group


def make_support(**fields: Any) -> User:
    user = make_user(is_staff=True, **fields)
    user.groups.add(support_group())
    return user


def make_superuser(**fields: Any) -> User:
    return make_user(is_staff=True, is_superuser=True, **fields)


def logged_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def make_task(user: User, status: str = TaskStatus.PENDING, *, age: timedelta | None = None, **fields: Any) -> Task:
    """A task charged through `task_create` and moved through the real transitions."""
    with mock.patch("tasks.services.check_user_url"):
        task = task_create(user=user, task_type="basic_clean", input_image_url=INPUT_URL, params={}).task
    if status in (TaskStatus.PROCESSING, TaskStatus.SUCCESS):
        task_start(task_id=task.pk, vendor_task_id=fields.pop("vendor_task_id", None))
    if status == TaskStatus.SUCCESS:
        task_succeed(task_id=task.pk, result_urls=[f"https://cdn.example.com/r/{task.pk}/{i}.png" for i in range(3)])
    if status == TaskStatus.FAILED:
        task_fail(task_id=task.pk, reason=fields.pop("reason", "处理失败"))
    if age is not None:
        past = timezone.now() - age
        Task.objects.filter(pk=task.pk).update(created_at=past, started_at=past if status != "pending" else None)
    if fields:
        Task.objects.filter(pk=task.pk).update(**fields)
    return Task.objects.get(pk=task.pk)
