"""Bulk data shaped like a busy service: one heavy user, many ordinary ones, mostly finished
tasks with their ledger rows, a backlog of stale pending tasks and some work in flight."""

from __future__ import annotations

import random
import uuid
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.contrib.auth.hashers import make_password
from django.db import connection, models
from django.utils import timezone

from accounts.models import User
from quota.models import LedgerKind, QuotaLedger
from tasks.models import Task, TaskStatus, TaskType

PASSWORD = "bench-Password-42"
HEAVY_USERNAME = "bench_heavy"
BATCH = 5_000
# Room for every create the load phase can make, so a benchmark never measures 1003 refusals.
QUOTA_HEADROOM = 100_000


@dataclass(frozen=True)
class SeedSize:
    users: int = 50
    tasks: int = 100_000
    heavy_tasks: int = 50_000
    stale_pending: int = 2_000
    processing: int = 300
    failed_share: float = 0.10
    pose12_share: float = 0.30


@dataclass(frozen=True)
class Seeded:
    heavy: User
    others: list[User]
    tasks: int
    ledger_rows: int
    by_status: dict[str, int]
    heavy_task_ids: list[uuid.UUID]
    processing_vendor_ids: list[str]


@contextmanager
def _explicit_timestamps(*fields: models.DateTimeField) -> Iterator[None]:
    """bulk_create fills auto_now/auto_now_add fields with the current time, which would put a
    90-day history at one instant and leave nothing for the sweep to find."""
    saved = [(f, f.auto_now, f.auto_now_add) for f in fields]
    for f, _, _ in saved:
        f.auto_now = f.auto_now_add = False
    try:
        yield
    finally:
        for f, auto_now, auto_now_add in saved:
            f.auto_now, f.auto_now_add = auto_now, auto_now_add


def _field(model: type[models.Model], name: str) -> models.DateTimeField:
    found = model._meta.get_field(name)
    assert isinstance(found, models.DateTimeField)
    return found


def seed(*, size: SeedSize, rng: random.Random) -> Seeded:
    now = timezone.now()
    password = make_password(PASSWORD)  # hashed once: the real hasher takes a good fraction of a second
    users = User.objects.bulk_create(
        User(
            username=HEAVY_USERNAME if n == 0 else f"bench_user_{n:03d}",
            password=password,
            is_member=True,
            quota_expire_at=now + timedelta(days=365),
        )
        for n in range(size.users)
    )
    heavy, others = users[0], users[1:]

    tasks = _tasks(size=size, rng=rng, now=now, heavy=heavy, others=others)
    ledger, balances = _ledger(tasks=tasks, users=users, now=now)
    for user in users:
        user.quota_remaining = balances[user.pk]
    User.objects.bulk_update(users, ["quota_remaining"], batch_size=BATCH)

    with _explicit_timestamps(_field(Task, "created_at"), _field(Task, "updated_at")):
        Task.objects.bulk_create(tasks, batch_size=BATCH)
    with _explicit_timestamps(_field(QuotaLedger, "created_at")):
        QuotaLedger.objects.bulk_create(ledger, batch_size=BATCH)

    with connection.cursor() as cursor:
        # Fresh bulk-loaded tables have no statistics and no visibility map yet; a real table of
        # this size has both, and the plans below would otherwise describe a state nobody runs.
        for model in (User, Task, QuotaLedger):
            cursor.execute(f'VACUUM (ANALYZE) "{model._meta.db_table}"')

    by_status: dict[str, int] = defaultdict(int)
    for task in tasks:
        by_status[task.status] += 1
    return Seeded(
        heavy=heavy,
        others=others,
        tasks=len(tasks),
        ledger_rows=len(ledger),
        by_status=dict(by_status),
        heavy_task_ids=[t.id for t in tasks if t.user_id == heavy.pk],
        processing_vendor_ids=[t.vendor_task_id for t in tasks if t.status == TaskStatus.PROCESSING],
    )


def _tasks(*, size: SeedSize, rng: random.Random, now: datetime, heavy: User, others: list[User]) -> list[Task]:
    history = timedelta(days=90).total_seconds()
    tasks: list[Task] = []
    for n in range(size.tasks):
        user = heavy if n < size.heavy_tasks else others[n % len(others)]
        pose12 = rng.random() < size.pose12_share
        created = now - timedelta(hours=1) - timedelta(seconds=rng.random() * history)
        task = Task(
            id=uuid.uuid4(),
            user_id=user.pk,
            type=TaskType.MODEL_POSE12 if pose12 else TaskType.BASIC_CLEAN,
            input_image_url=f"https://images.example.com/in/{n}.jpg",
            params={"scene": "street", "category": "dress"} if pose12 else {},
            vendor_task_id=str(1_900_000_000_000_000_000 + n) if pose12 else "",
            cost=1,
            created_at=created,
            updated_at=created + timedelta(seconds=40),
            started_at=created + timedelta(seconds=2),
            completed_at=created + timedelta(seconds=40),
        )
        if rng.random() < size.failed_share:
            task.status = TaskStatus.FAILED
            task.error_message = "任务超时(10分钟未处理)"
        else:
            task.status = TaskStatus.SUCCESS
            task.result_urls = [f"https://cdn.example.com/results/{task.id}/{i}.png" for i in range(3)]
        tasks.append(task)

    picked = rng.sample(range(size.tasks), size.stale_pending + size.processing)
    for n in picked[: size.stale_pending]:
        # Older than the pending timeout, with the due time of a queued message that was lost.
        task = tasks[n]
        created = now - timedelta(minutes=20) - timedelta(seconds=rng.random() * 6 * 3600)
        task.status, task.error_message, task.result_urls = TaskStatus.PENDING, "", []
        task.vendor_task_id = ""
        task.created_at = task.updated_at = task.next_attempt_at = created
        task.started_at = task.completed_at = None
    for n in picked[size.stale_pending :]:
        task = tasks[n]
        created = now - timedelta(seconds=rng.random() * 600)
        task.type, task.params = TaskType.MODEL_POSE12, {"scene": "street", "category": "dress"}
        task.vendor_task_id = str(1_900_000_000_000_000_000 + n)
        task.status, task.error_message, task.result_urls = TaskStatus.PROCESSING, "", []
        task.created_at, task.started_at = created, created + timedelta(seconds=2)
        task.updated_at, task.completed_at = task.started_at, None
        task.next_attempt_at = now + timedelta(seconds=rng.random() * 60)
    return tasks


def _ledger(*, tasks: list[Task], users: list[User], now: datetime) -> tuple[list[QuotaLedger], dict[int, int]]:
    """A grant, one charge per task and one refund per failed task, with running balances, so the
    ledger's indexes and the refund sub-select in every task read see a realistic table."""
    per_user: dict[int, list[Task]] = defaultdict(list)
    for task in tasks:
        per_user[task.user_id].append(task)
    rows: list[QuotaLedger] = []
    balances: dict[int, int] = {}
    for user in users:
        owned = sorted(per_user[user.pk], key=lambda t: t.created_at)
        balance = len(owned) + QUOTA_HEADROOM
        start = owned[0].created_at - timedelta(minutes=1) if owned else now
        rows.append(
            QuotaLedger(
                user_id=user.pk,
                delta=balance,
                balance_after=balance,
                kind=LedgerKind.GRANT,
                reason="bench",
                created_at=start,
            )
        )
        for task in owned:
            balance -= task.cost
            rows.append(
                QuotaLedger(
                    user_id=user.pk,
                    delta=-task.cost,
                    balance_after=balance,
                    kind=LedgerKind.DEDUCT,
                    task_id=task.id,
                    created_at=task.created_at,
                )
            )
            if task.status == TaskStatus.FAILED:
                balance += task.cost
                rows.append(
                    QuotaLedger(
                        user_id=user.pk,
                        delta=task.cost,
                        balance_after=balance,
                        kind=LedgerKind.REFUND,
                        task_id=task.id,
                        created_at=task.completed_at or task.created_at,
                    )
                )
        balances[user.pk] = balance
    return rows, balances
