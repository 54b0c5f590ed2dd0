"""Fair dispatch within RunningHub's capacity (tasks/dispatch.py): the order, the slot count, and
end to end with a real worker against the simulator set to one slot."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import User
from accounts.tests.factories import make_member
from devtools.testing import SimulatorHandle
from media.tests.factories import upload_photo
from quota.selectors import quota_mismatches
from tasks.dispatch import fair_order, pose12_dispatch, queue_positions, slots_in_use
from tasks.lifecycle import task_set_stage
from tasks.models import Task, TaskStage, TaskStatus, TaskType
from tasks.queue import enqueue_dispatch
from tasks.sweep import tasks_sweep
from tasks.tests.conftest import wait_for
from tasks.tests.factories import broker, make_task, post_create

Client = Callable[[User], APIClient]


def test_fair_order_serves_every_member_before_anyone_gets_a_second_slot() -> None:
    a, b, c = 1, 2, 3
    backlog = [(uuid.uuid4(), a) for _ in range(20)]
    single_b, single_c = (uuid.uuid4(), b), (uuid.uuid4(), c)
    order = fair_order([*backlog, single_b, single_c], {})
    assert order[:3] == [backlog[0][0], single_b[0], single_c[0]]
    assert order[3:] == [task_id for task_id, _ in backlog[1:]]


def test_a_member_arriving_late_goes_before_the_member_just_served() -> None:
    heavy = [(uuid.uuid4(), 1) for _ in range(10)]
    late = (uuid.uuid4(), 2)
    just_now = timezone.now()
    assert fair_order([*heavy, late], {1: just_now}).index(late[0]) == 0
    assert fair_order([*heavy, late], {1: just_now, 2: just_now + timedelta(seconds=1)}).index(late[0]) == 1


@pytest.mark.django_db(transaction=True)
def test_slots_are_handed_out_up_to_the_limit_then_freed_by_leaving_runninghub(settings: Any) -> None:
    settings.RUNNINGHUB_MAX_CONCURRENCY = 2
    member, other = make_member(quota=20), make_member(quota=20)
    mine = [make_task(member, task_type=TaskType.MODEL_POSE12) for _ in range(3)]
    theirs = make_task(other, task_type=TaskType.MODEL_POSE12)
    assert queue_positions() == {mine[0].pk: 1, theirs.pk: 2, mine[1].pk: 3, mine[2].pk: 4}

    with broker() as queued:
        assert pose12_dispatch() is False
    assert slots_in_use() == 2
    assert set(Task.objects.filter(stage=TaskStage.SUBMITTED).values_list("pk", flat=True)) == {mine[0].pk, theirs.pk}
    assert sorted(queued.task_ids()) == sorted([str(mine[0].pk), str(theirs.pk)])
    assert queue_positions() == {mine[1].pk: 1, mine[2].pk: 2}

    with broker() as queued:
        pose12_dispatch()
    assert slots_in_use() == 2 and queued.task_ids() == [], "no slot is free"

    with broker() as queued:
        task_set_stage(task_id=theirs.pk, stage=TaskStage.COLLECTING)
        assert queued.names() == ["tasks.dispatch"], "a job leaving RunningHub asks for the next one"
        pose12_dispatch()
    assert queued.task_ids() == [str(mine[1].pk)]
    assert queue_positions() == {mine[2].pk: 1}


@pytest.mark.django_db(transaction=True)
def test_a_waiting_task_that_asks_for_a_slot_waits_without_holding_its_lease(settings: Any) -> None:
    settings.RUNNINGHUB_MAX_CONCURRENCY = 1
    member = make_member(quota=5)
    first, second = (make_task(member, task_type=TaskType.MODEL_POSE12) for _ in range(2))
    with broker() as queued:
        assert pose12_dispatch(claimant_id=first.pk) is True
        Task.objects.filter(pk=second.pk).update(lease_until=timezone.now() + timedelta(minutes=5))
        assert pose12_dispatch(claimant_id=second.pk) is False
    second.refresh_from_db()
    assert second.lease_until is None and second.next_attempt_at is not None
    assert second.next_attempt_at > timezone.now(), "it looks again later even if no wake-up comes"
    assert queued.task_ids() == [str(second.pk)]


@pytest.mark.django_db(transaction=True)
def test_a_reserved_task_whose_worker_died_keeps_its_slot_and_is_resumed(settings: Any) -> None:
    """The slot is the task row: a crashed worker's reservation is not leaked; the task is queued
    again once its lease runs out, and nobody else gets a second slot meanwhile."""
    settings.RUNNINGHUB_MAX_CONCURRENCY = 1
    member = make_member(quota=5)
    reserved, waiting = (make_task(member, task_type=TaskType.MODEL_POSE12) for _ in range(2))
    with broker():
        pose12_dispatch(claimant_id=reserved.pk)
    # The worker that holds the reservation dies: its lease runs out, its message is gone.
    past = timezone.now() - timedelta(minutes=5)
    Task.objects.filter(pk=reserved.pk).update(lease_until=past, next_attempt_at=past)
    with broker() as queued:
        tasks_sweep()
    assert str(reserved.pk) in queued.task_ids(), "the sweep resumes the reserved task"
    assert str(waiting.pk) not in queued.task_ids() and slots_in_use() == 1


@pytest.mark.django_db(transaction=True)
@pytest.mark.slow
def test_one_slot_shared_fairly_end_to_end(
    worker: None, sim: SimulatorHandle, settings: Any, client_for: Client, prompt_templates: None
) -> None:
    """3 members, one with 20 pose12 tasks and two with one each, one RunningHub slot: the single
    tasks start within the first three dispatches, the simulator never runs two jobs at once, and
    the backlog's last task sees its queue position fall one by one."""
    sim.configure(run_time=0.05, webhook=False)
    settings.RUNNINGHUB_POLL_INTERVAL = 1
    # No slot while the members order, so that all 22 tasks wait together when dispatch begins.
    settings.RUNNINGHUB_MAX_CONCURRENCY = 0
    heavy, alone, other = (make_member(quota=30) for _ in range(3))

    def order(member: User) -> str:
        client = client_for(member)
        body = {"type": "model_pose12", "inputImageUrl": upload_photo(client)}
        response = post_create(client, body)
        assert response.status_code == 201, response.content
        return str(response.json()["data"]["id"])

    photo_client = client_for(heavy)
    backlog = [order(heavy) for _ in range(20)]
    singles = [order(alone), order(other)]
    wait_for(lambda: not Task.objects.filter(lease_until__isnull=False).exists(), timeout=30)
    settings.RUNNINGHUB_MAX_CONCURRENCY = 1
    enqueue_dispatch()
    positions: list[int] = []
    stop = threading.Event()

    def watch_last() -> None:
        while not stop.is_set():
            position = photo_client.get(f"/api/task/{backlog[-1]}").json()["data"]["queuePosition"]
            if position is not None and (not positions or positions[-1] != position):
                positions.append(position)
            time.sleep(0.05)

    watcher = threading.Thread(target=watch_last)
    watcher.start()
    try:
        wait_for(
            lambda: Task.objects.filter(pk__in=backlog + singles, status=TaskStatus.SUCCESS).count() == 22,
            timeout=150,
            interval=0.5,
        )
    finally:
        stop.set()
        watcher.join()

    first_three = list(Task.objects.order_by("dispatched_at").values_list("pk", flat=True)[:3])
    assert {str(pk) for pk in first_three} >= set(singles)
    state = sim.state()
    assert state["peakBusy"] == 1 and state["queueFullAnswers"] == 0
    assert positions[0] >= 19 and positions == list(range(positions[0], 0, -1)), positions
    assert quota_mismatches() == []


@pytest.mark.django_db(transaction=True)
def test_a_task_given_its_slot_while_its_worker_asked_keeps_it_and_its_lease(settings: Any) -> None:
    """Another dispatch (the sweep's, or a job leaving RunningHub) handed the slot to the task
    between its worker's look and its request: the worker is told to go on, and holds the task."""
    settings.RUNNINGHUB_MAX_CONCURRENCY = 1
    member = make_member(quota=5)
    task, behind = (make_task(member, task_type=TaskType.MODEL_POSE12) for _ in range(2))
    lease = timezone.now() + timedelta(minutes=5)
    Task.objects.filter(pk=task.pk).update(lease_until=lease)
    with broker():
        pose12_dispatch()
    assert Task.objects.get(pk=task.pk).stage == TaskStage.SUBMITTED
    with broker() as queued:
        assert pose12_dispatch(claimant_id=task.pk) is True
    task.refresh_from_db()
    assert (task.stage, task.lease_until) == (TaskStage.SUBMITTED, lease)
    assert queued.sent == [], "nothing queued: its worker submits it now"
    assert slots_in_use() == 1 and queue_positions() == {behind.pk: 1}
