"""Fixtures of the task tests: a member's task ordered through the API, and a real Celery worker
(in a thread of the test process, on the Redis broker) for the end-to-end tests."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from rest_framework.test import APIClient

from accounts.models import User
from devtools.testing import SimulatorHandle
from tasks.tests.factories import post_create


@pytest.fixture
def own_task(client_for: Callable[[User], APIClient], member: User, uploaded: str) -> dict[str, Any]:
    """A basic_clean task `member` ordered through the API, as the API answered it."""
    return dict(post_create(client_for(member), {"type": "basic_clean", "inputImageUrl": uploaded}).json()["data"])


@pytest.fixture
def worker(transactional_db: None) -> Iterator[None]:
    from celery.contrib.testing.worker import start_worker

    from config.celery import app

    app.control.purge()
    with start_worker(
        app, pool="solo", concurrency=1, perform_ping_check=False, shutdown_timeout=20, loglevel="WARNING"
    ):
        yield


@pytest.fixture
def pose12_client(
    sim: SimulatorHandle, settings: Any, member: User, client_for: Callable[[User], APIClient], prompt_templates: None
) -> APIClient:
    """`member`'s client for pose12 orders: the simulator calls no webhook and the worker polls it
    every second (each test sets the simulator's run time)."""
    sim.configure(webhook=False)
    settings.RUNNINGHUB_POLL_INTERVAL = 1
    return client_for(member)


def wait_for(check: Callable[[], Any], *, timeout: float = 30, interval: float = 0.2) -> Any:
    """Poll `check` until it returns something truthy; the worker runs in another thread."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {check}")
        time.sleep(interval)


def task_status(client: APIClient, task_id: str, *wanted: str) -> Callable[[], dict[str, Any] | None]:
    def check() -> dict[str, Any] | None:
        task: dict[str, Any] = client.get(f"/api/task/{task_id}").json()["data"]
        return task if task["status"] in wanted else None

    return check
