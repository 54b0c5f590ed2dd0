"""Long polling (`GET /api/task/{id}?wait=N`): woken by the change, holding no database connection
while it waits (tasks/notify.py, tasks/selectors.py task_get_when_changed)."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any
from unittest import mock

import pytest
import redis
from django.db import connection
from redis.client import PubSub
from rest_framework.test import APIClient

from accounts.models import User
from tasks.lifecycle import task_set_stage, task_start
from tasks.models import Task, TaskStage, TaskStatus
from tasks.notify import _listener, task_changed, task_watch
from tasks.sweep import tasks_sweep
from tasks.tests.conftest import wait_for
from tasks.tests.factories import broker, make_stale_tasks, make_task

pytestmark = pytest.mark.django_db(transaction=True)

Client = Callable[[User], APIClient]


def waiting_on(task: Any, count: int) -> None:
    """Wait (bounded) until `count` requests are registered for the task's change; a change
    before that would be read at once and prove no wake-up."""
    wait_for(lambda: len(_listener._waiters.get(str(task.pk), ())) >= count, timeout=20, interval=0.02)


def _waiting_get(client: APIClient, url: str, answers: list[Any], index: int) -> None:
    try:
        answers[index] = (client.get(url), time.monotonic())
    finally:
        connection.close()


def _answer_to_a_start(client: APIClient, task: Any) -> tuple[Any, float]:
    """A `?wait=20` read of `task`, started before a worker starts the task: its answer, and how
    long after the start it came."""
    answers: list[Any] = [None]
    waiter = threading.Thread(target=_waiting_get, args=(client, f"/api/task/{task.pk}?wait=20", answers, 0))
    waiter.start()
    waiting_on(task, 1)
    with broker():
        task_start(task_id=task.pk)
    changed_at = time.monotonic()
    waiter.join(timeout=25)
    response, answered_at = answers[0]
    return response, answered_at - changed_at


def test_a_waiting_request_answers_within_a_second_of_the_change(member: User, client_for: Client) -> None:
    task = make_task(member)
    response, seconds = _answer_to_a_start(client_for(member), task)
    assert response.status_code == 200
    assert (response.json()["data"]["status"], response.json()["data"]["stage"]) == ("processing", "running")
    assert seconds < 1.0


def test_a_stage_change_wakes_the_waiter_too(member: User, client_for: Client) -> None:
    task = make_task(member, TaskStatus.PROCESSING)
    answers: list[Any] = [None]
    waiter = threading.Thread(
        target=_waiting_get, args=(client_for(member), f"/api/task/{task.pk}?wait=20", answers, 0)
    )
    waiter.start()
    waiting_on(task, 1)
    task_set_stage(task_id=task.pk, stage=TaskStage.AUDITING)
    waiter.join(timeout=25)
    assert answers[0][0].json()["data"]["stage"] == "auditing"


def test_the_sweep_wakes_the_waiters_of_every_task_it_fails(client_for: Client) -> None:
    """The sweep announces a batch's tasks with one Redis command; each task's waiter hears its own."""
    tasks = make_stale_tasks(3)
    client = client_for(tasks[0].user)
    answers: list[Any] = [None] * len(tasks)
    waiters = [
        threading.Thread(target=_waiting_get, args=(client, f"/api/task/{task.pk}?wait=20", answers, i))
        for i, task in enumerate(tasks)
    ]
    for waiter in waiters:
        waiter.start()
    for task in tasks:
        waiting_on(task, 1)
    with broker():
        assert tasks_sweep().failed_pending == len(tasks)
    swept_at = time.monotonic()
    for waiter in waiters:
        waiter.join(timeout=25)
    assert [answer[0].json()["data"]["status"] for answer in answers] == ["failed"] * len(tasks)
    assert max(answered_at for _, answered_at in answers) - swept_at < 1.0, "woken, not timed out"


def test_without_a_change_it_answers_after_the_wait(member: User, client_for: Client) -> None:
    task = make_task(member)
    started = time.monotonic()
    response = client_for(member).get(f"/api/task/{task.pk}", {"wait": 1})
    assert 1.0 <= time.monotonic() - started < 3
    assert response.json()["data"]["status"] == "pending"


def test_a_finished_task_answers_at_once(member: User, client_for: Client) -> None:
    task = make_task(member, TaskStatus.FAILED)
    started = time.monotonic()
    assert client_for(member).get(f"/api/task/{task.pk}", {"wait": 20}).status_code == 200
    assert time.monotonic() - started < 1


@pytest.mark.parametrize("wait", ["0", "26", "-1", "soon"])
def test_wait_out_of_range_is_4002(member: User, client_for: Client, wait: str) -> None:
    task = make_task(member)
    response = client_for(member).get(f"/api/task/{task.pk}", {"wait": wait})
    assert (response.status_code, response.json()["error"]["code"]) == (400, 4002)


def test_a_hundred_waiters_do_not_hold_a_hundred_database_connections(member: User, client_for: Client) -> None:
    task = make_task(member)
    client = client_for(member)
    answers: list[Any] = [None] * 100
    waiters = [
        threading.Thread(target=_waiting_get, args=(client, f"/api/task/{task.pk}?wait=4", answers, i))
        for i in range(100)
    ]
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()")
        before = cursor.fetchone()[0]
    for waiter in waiters:
        waiter.start()
    waiting_on(task, 100)
    time.sleep(0.5)  # the last ones to register have read the task by now (a margin, not a condition)
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()")
        during = cursor.fetchone()[0]
    for waiter in waiters:
        waiter.join(timeout=30)
    assert all(answer is not None and answer[0].status_code == 200 for answer in answers)
    assert during - before < 10, f"{during - before} connections held by 100 waiters"


def test_after_losing_its_redis_connection_the_listener_subscribes_again_and_wakes_waiters(
    member: User, client_for: Client, caplog: pytest.LogCaptureFixture
) -> None:
    task = make_task(member)
    with task_watch(task.pk):
        listener = _listener._thread  # running and subscribed
    read = PubSub.parse_response
    lost, subscribed_again = threading.Event(), threading.Event()

    def parse_response(pubsub: PubSub, block: bool = True, timeout: float = 0) -> Any:
        """The listener's next read finds the connection reset; later reads are real."""
        if threading.current_thread() is listener and not lost.is_set():
            lost.set()
            raise redis.ConnectionError("Connection reset by peer")
        response = read(pubsub, block=block, timeout=timeout)
        if threading.current_thread() is listener and lost.is_set():
            subscribed_again.set()  # the new subscription's confirmation was read
        return response

    with mock.patch.object(PubSub, "parse_response", parse_response), caplog.at_level(logging.WARNING, "tasks.notify"):
        task_changed(uuid.uuid4())  # any message ends the listener's current read
        assert lost.wait(10) and subscribed_again.wait(10)
        response, seconds = _answer_to_a_start(client_for(member), task)
    assert response.json()["data"]["status"] == "processing"
    assert seconds < 1.0, "woken by the new subscription, not by the end of the wait"
    assert "task change subscription lost; reconnecting" in caplog.text


def test_with_redis_down_the_sweep_still_fails_its_tasks_and_logs_the_lost_announcement(
    settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """Losing the announcement only delays waiters until their timeout; the failures stand."""
    settings.TASK_EVENTS_REDIS_URL = "redis://127.0.0.1:1/0"  # loopback, nothing listens
    tasks = make_stale_tasks(3)
    with broker(), caplog.at_level(logging.WARNING, "tasks.notify"):
        assert tasks_sweep().failed_pending == 3
    assert not Task.objects.filter(pk__in=[t.pk for t in tasks]).exclude(status=TaskStatus.FAILED).exists()
    assert "could not publish the change of 3 tasks" in caplog.text
