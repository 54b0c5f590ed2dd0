"""Fair use of RunningHub's capacity: at most RUNNINGHUB_MAX_CONCURRENCY model_pose12 jobs in
flight across every worker and machine, and waiting tasks served round-robin across members.

The slots are the task rows themselves: a pose12 task whose stage is `submitted` or `running`
holds one. Reservations are made under one database-wide lock (a PostgreSQL advisory lock held to
the end of the transaction; SQLite's write lock in the embedded default), so two workers never
hand out the same slot, and a crashed worker leaks nothing: its reserved task keeps its slot and is
resumed when its lease runs out, and a finished, failed or cancelled task frees its slot at once.

Order: members take turns — every waiting member's next task before anyone's second, the member
served longest ago (or never) first — so one member's backlog delays another member's first job by
at most one slot.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Max
from django.utils import timezone

from tasks.lifecycle import task_event
from tasks.models import SLOT_STAGES, Task, TaskStage, TaskStatus, TaskType
from tasks.notify import task_changed
from tasks.queue import enqueue_advance

# An arbitrary constant naming the dispatch lock among PostgreSQL advisory locks.
DISPATCH_LOCK_KEY = 0x70_6F_73_65_31_32
# A waiting task looks again this often even if no finished job wakes it (a lost message).
WAITING_RECHECK = timedelta(seconds=60)
# Turns are taken by when a member was last served, looking back this far (older is "never").
SERVED_LOOK_BACK = timedelta(hours=1)


def _waiting() -> list[tuple[uuid.UUID, int]]:
    return list(
        Task.objects.filter(type=TaskType.MODEL_POSE12, status=TaskStatus.PENDING, stage=TaskStage.QUEUED)
        .order_by("created_at", "id")
        .values_list("id", "user_id")
    )


def _last_served(user_ids: set[int], now: datetime) -> dict[int, datetime]:
    """When each member last got a slot, within the look-back (older counts as never)."""
    rows = (
        Task.objects.filter(type=TaskType.MODEL_POSE12, user_id__in=user_ids, dispatched_at__gte=now - SERVED_LOOK_BACK)
        .values("user_id")
        .annotate(last=Max("dispatched_at"))
        .values_list("user_id", "last")
    )
    return dict(rows)


def fair_order(waiting: list[tuple[uuid.UUID, int]], last_served: dict[int, datetime]) -> list[uuid.UUID]:
    """`waiting` (oldest first) in dispatch order: members take turns — every member's next task
    before anyone's second, the member served longest ago (or never) first, then the oldest task."""
    never = datetime.min.replace(tzinfo=UTC)
    seen: dict[int, int] = defaultdict(int)
    ranked = []
    for age, (task_id, user_id) in enumerate(waiting):
        seen[user_id] += 1
        ranked.append((seen[user_id], last_served.get(user_id, never), age, task_id))
    return [task_id for *_, task_id in sorted(ranked)]


def _fair_waiting(now: datetime) -> list[uuid.UUID]:
    waiting = _waiting()
    return fair_order(waiting, _last_served({user_id for _, user_id in waiting}, now))


def queue_positions() -> dict[uuid.UUID, int]:
    """1-based place of every task waiting for a RunningHub slot."""
    return {task_id: n for n, task_id in enumerate(_fair_waiting(timezone.now()), 1)}


def slots_in_use() -> int:
    return Task.objects.filter(type=TaskType.MODEL_POSE12, stage__in=SLOT_STAGES).active().count()


def _lock() -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [DISPATCH_LOCK_KEY])


def pose12_dispatch(*, claimant_id: uuid.UUID | None = None) -> bool:
    """Give free slots to the fairest waiting tasks and queue them. `claimant_id` is a waiting task
    whose worker holds its lease and asks for itself: True when it got a slot (the caller submits it
    now); otherwise its lease is released here, under the same lock, to wait for its turn."""
    now = timezone.now()
    with transaction.atomic():
        _lock()
        if claimant_id is not None:
            stage = Task.objects.filter(pk=claimant_id).values_list("stage", flat=True).first()
            if stage in SLOT_STAGES:
                return True
        free = settings.RUNNINGHUB_MAX_CONCURRENCY - slots_in_use()
        chosen = _fair_waiting(now)[: max(free, 0)]
        if chosen:
            Task.objects.filter(pk__in=chosen).update(stage=TaskStage.SUBMITTED, dispatched_at=now)
            for task in Task.objects.filter(pk__in=chosen).only("id", "status", "stage"):
                task_event(task=task, from_status=task.status, actor=None, reason="已分配生成名额")
            others = [pk for pk in chosen if pk != claimant_id]
            woken = list(Task.objects.filter(pk__in=others).lease_free(now).values_list("id", flat=True))
            Task.objects.filter(pk__in=woken).update(next_attempt_at=now)
            transaction.on_commit(lambda: _notify(chosen, woken, due=now))
        if claimant_id is not None and claimant_id not in chosen:
            due = now + WAITING_RECHECK
            Task.objects.filter(pk=claimant_id).update(lease_until=None, next_attempt_at=due)
            waiting_id = claimant_id
            transaction.on_commit(
                lambda: enqueue_advance(
                    task_id=waiting_id,
                    task_type=TaskType.MODEL_POSE12,
                    due=due,
                    countdown=WAITING_RECHECK.total_seconds(),
                )
            )
        return claimant_id in chosen


def _notify(chosen: list[uuid.UUID], woken: list[uuid.UUID], *, due: datetime) -> None:
    for task_id in woken:
        enqueue_advance(task_id=task_id, task_type=TaskType.MODEL_POSE12, due=due)
    for task_id in chosen:
        task_changed(task_id)
