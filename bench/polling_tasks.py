"""The product side of bench.polling: members with quota, their uploads through the media service,
model_pose12 tasks through `task_create`, and the tasks' outcomes. Imported once Django is set up."""

from __future__ import annotations

import io
import time
from collections import Counter
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db.models import Max
from django.utils import timezone
from PIL import Image

from accounts.models import User
from config.celery import app as celery_app
from media.services import media_upload
from quota.services import quota_grant
from tasks.creation import task_create
from tasks.models import Task, TaskStatus, TaskType

SUCCESS = TaskStatus.SUCCESS.value


def poll_interval() -> int:
    return int(settings.RUNNINGHUB_POLL_INTERVAL)


def purge_queues() -> None:
    """Drop messages earlier measures left on the bench's queues (the create loads' basic_clean
    steps), which would otherwise be the polling worker's work too."""
    celery_app.control.purge()


def _image(n: int) -> bytes:
    """A distinct picture per task: RunningHub names an upload by its content's hash, and the
    simulator's call counter follows a task by that name."""
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (n % 256, (n // 256) % 256, 90)).save(buffer, format="PNG")
    return buffer.getvalue()


def members(count: int, *, quota: int, prefix: str = "poll") -> list[User]:
    found = []
    expire = timezone.now() + timedelta(days=30)
    for n in range(count):
        user = User.objects.create_user(username=f"{prefix}_{n:04d}", password=None)
        User.objects.filter(pk=user.pk).update(is_member=True, quota_expire_at=expire)
        quota_grant(user_id=user.pk, amount=quota, days=30, reason="bench.polling")
        user.refresh_from_db()
        found.append(user)
    return found


def uploads(owners: list[User], count: int) -> list[tuple[User, str]]:
    """`count` inputs uploaded through the media service, the members taking turns."""
    found = []
    for n in range(count):
        user = owners[n % len(owners)]
        _, url, _ = media_upload(user_id=user.pk, data=_image(n))
        found.append((user, url))
    return found


def create_pose12(orders: list[tuple[User, str]]) -> list[str]:
    """One task per (member, upload), queued by task_create as a request would queue it."""
    return [
        str(
            task_create(
                user=user,
                task_type=TaskType.MODEL_POSE12,
                input_image_url=url,
                params={"scene": "street", "category": "dress"},
            ).task.pk
        )
        for user, url in orders
    ]


def wait_finished(task_ids: list[str], *, until: float) -> None:
    tasks = Task.objects.filter(pk__in=task_ids)
    while tasks.active().exists() and time.monotonic() < until:
        time.sleep(1)


@dataclass(frozen=True)
class Outcomes:
    by_status: dict[str, int]
    last_completed: float  # epoch seconds; NaN when none completed


def outcomes(task_ids: list[str]) -> Outcomes:
    tasks = Task.objects.filter(pk__in=task_ids)
    last = tasks.aggregate(last=Max("completed_at"))["last"]
    return Outcomes(
        by_status=dict(Counter(tasks.values_list("status", flat=True))),
        last_completed=last.timestamp() if last else float("nan"),
    )
