"""Tasks for tests, made through the public services with only the network edge patched."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from unittest import mock

from celery import Celery
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import User
from accounts.tests.factories import make_member
from tasks.creation import task_create
from tasks.lifecycle import task_fail, task_start, task_succeed
from tasks.models import FailureCode, Task, TaskStatus, TaskType

INPUT_URL = "https://images.example.com/p.png"
# A documentation-range stand-in for a public address: resolution only, never connected to.
PUBLIC_ADDRESS = "93.184.216.34"


@contextmanager
def public_dns(address: str = PUBLIC_ADDRESS, *, only: str | None = None) -> Iterator[None]:
    """Every host name resolves to `address`, a public one unless a test says otherwise (the DNS
    edge; no connection is made by creation). With `only`, just that name does, and the others
    resolve as usual (for work running meanwhile that connects to Redis or PostgreSQL)."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    real = socket.getaddrinfo

    def resolve(host: Any, port: Any, *args: Any, **kwargs: Any) -> list[Any]:
        if only is not None and host != only:
            return real(host, port, *args, **kwargs)
        return [(family, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (address, port or 443))]

    with mock.patch("socket.getaddrinfo", side_effect=resolve):
        yield


@dataclass
class Broker:
    """What was published to the broker while `broker()` was active."""

    sent: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = field(default_factory=list)

    def names(self) -> list[str]:
        return [name for name, _, _ in self.sent]

    def task_ids(self, name: str = "tasks.advance") -> list[str]:
        return [args[0] for sent, args, _ in self.sent if sent == name]


@contextmanager
def broker(*, down: bool = False) -> Iterator[Broker]:
    """The broker edge: records publishes instead of sending them, or fails them like an outage."""
    record = Broker()

    def send_task(app: Celery, name: str, args: Any = (), **options: Any) -> None:
        if down:
            raise OSError("broker down")
        record.sent.append((name, tuple(args or ()), options))

    with mock.patch.object(Celery, "send_task", autospec=True, side_effect=send_task):
        yield record


def make_task(
    user: User,
    status: str = TaskStatus.PENDING,
    *,
    task_type: TaskType = TaskType.BASIC_CLEAN,
    age: timedelta | None = None,
    **fields: Any,
) -> Task:
    """A task charged through `task_create` and moved through the real transitions."""
    with public_dns(), broker():
        params = {"scene": "street", "category": "dress"} if task_type == TaskType.MODEL_POSE12 else {}
        task = task_create(user=user, task_type=task_type, input_image_url=INPUT_URL, params=params).task
        if status in (TaskStatus.PROCESSING, TaskStatus.SUCCESS):
            task_start(task_id=task.pk, vendor_task_id=fields.pop("vendor_task_id", None))
        if status == TaskStatus.SUCCESS:
            task_succeed(
                task_id=task.pk, result_urls=[f"https://cdn.example.com/r/{task.pk}/{i}.png" for i in range(3)]
            )
        if status == TaskStatus.FAILED:
            task_fail(
                task_id=task.pk,
                code=fields.pop("failure_code", FailureCode.SUPPORT),
                message=fields.pop("reason", ""),
            )
    if age is not None:
        past = timezone.now() - age
        Task.objects.filter(pk=task.pk).update(created_at=past, started_at=past if status != "pending" else None)
    if fields:
        Task.objects.filter(pk=task.pk).update(**fields)
    return Task.objects.get(pk=task.pk)


def make_stale_tasks(count: int, *, age: timedelta = timedelta(hours=1)) -> list[Task]:
    """`count` pending tasks of one member, created `age` ago: past the pending timeout."""
    owner = make_member(quota=count)
    return [make_task(owner, age=age) for _ in range(count)]


def post_create(client: APIClient, body: Any, **headers: Any) -> Any:
    """POST /api/task/create as the client's user; the response, whatever it is."""
    return client.post("/api/task/create", body, format="json", **headers)
