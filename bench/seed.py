"""Bulk data shaped like a busy service, written by PostgreSQL itself (INSERT … SELECT over
generate_series): a million finished tasks of ten thousand members with one heavy member and one
medium one, their ledger rows, and a backlog of stale pending tasks for the sweep.

Column lists come from the models (bench/sqlgen.py), so columns added later get their defaults."""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.contrib.auth.hashers import make_password
from django.db import connection
from django.utils import timezone

from accounts.models import User
from bench.sqlgen import insert_select
from quota.models import LedgerKind, QuotaLedger
from tasks.counters import task_counters_rebuild
from tasks.models import Task, TaskStatus, TaskType

PASSWORD = "bench-Password-42"
# Room for every create the load phase can make, so a benchmark never measures 1003 refusals.
QUOTA_HEADROOM = 1_000_000


@dataclass(frozen=True)
class SeedSize:
    """BENCH_SCALE (default 1) scales every count, for a quicker run on a slower machine."""

    members: int = 10_000
    tasks: int = 1_000_000
    heavy_tasks: int = 100_000
    medium_tasks: int = 10_000
    stale_pending: int = 100_000
    # The oldest stale tasks, swept by the row-by-row baseline before the set-based sweep runs.
    baseline_stale: int = 2_000

    @classmethod
    def from_environment(cls) -> SeedSize:
        scale = float(os.environ.get("BENCH_SCALE", "1"))
        return cls(**{name: max(2, int(getattr(cls(), name) * scale)) for name in cls.__dataclass_fields__})


@dataclass(frozen=True)
class Seeded:
    first_user_id: int
    heavy_id: int
    medium_id: int
    light_id: int
    tasks: int
    ledger_rows: int
    by_status: dict[str, int]


def _execute(sql: str, params: Any = None) -> int:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


def seed(*, size: SeedSize) -> Seeded:
    now = timezone.now()
    password = make_password(PASSWORD)  # hashed once: the real hasher takes tens of milliseconds
    users = User._meta.db_table
    _execute(
        insert_select(
            User,
            {
                "username": "'bench_' || lpad(g::text, 6, '0')",
                "password": "%(password)s",
                "is_member": "true",
                "is_active": "true",
                "quota_expire_at": "%(expire)s",
                "date_joined": "%(now)s",
            },
            f"generate_series(1, {size.members}) g",
        ),
        {"password": password, "expire": now + timedelta(days=365), "now": now},
    )
    first = User.objects.order_by("pk").values_list("pk", flat=True).first()
    assert first is not None
    heavy, medium, light = first, first + 1, first + 2
    others = size.members - 2

    # Task g belongs to the heavy member first, then the medium one, then round-robin to the rest.
    owner = (
        f"CASE WHEN g <= {size.heavy_tasks} THEN {heavy} "
        f"WHEN g <= {size.heavy_tasks + size.medium_tasks} THEN {medium} "
        f"ELSE {light} + mod(g, {others}) END"
    )
    pose12 = "mod(g::bigint * 7919, 100) < 30"
    failed = "mod(g::bigint * 104729, 100) < 10"
    created = "%s::timestamptz - interval '1 hour' - mod(g, 7776000) * interval '1 second'"
    _execute(
        insert_select(
            Task,
            {
                "id": "gen_random_uuid()",
                "user_id": owner,
                "type": f"CASE WHEN {pose12} THEN '{TaskType.MODEL_POSE12}' ELSE '{TaskType.BASIC_CLEAN}' END",
                "status": f"CASE WHEN {failed} THEN '{TaskStatus.FAILED}' ELSE '{TaskStatus.SUCCESS}' END",
                "stage": "'done'",
                "input_image_url": "'https://images.example.com/in/' || g || '.jpg'",
                "params": f'CASE WHEN {pose12} THEN \'{{"scene": "street", "category": "dress"}}\'::jsonb '
                "ELSE '{}'::jsonb END",
                "result_urls": f"CASE WHEN {failed} THEN '[]'::jsonb "
                'ELSE \'["https://cdn.example.com/r/1.png", "https://cdn.example.com/r/2.png"]\'::jsonb END',
                "error_message": f"CASE WHEN {failed} THEN '任务超时(10分钟未处理)' ELSE '' END",
                "failure_code": f"CASE WHEN {failed} THEN 'timeout' ELSE '' END",
                "vendor_task_id": f"CASE WHEN {pose12} THEN (1900000000000000000 + g)::text ELSE '' END",
                "cost": "1",
                "created_at": created,
                "updated_at": f"{created} + interval '40 seconds'",
                "started_at": f"{created} + interval '2 seconds'",
                "completed_at": f"{created} + interval '40 seconds'",
            },
            f"generate_series(1, {size.tasks}) g",
        ),
        [now] * 4,
    )
    # The sweep's backlog: pending tasks 20 minutes to 6 hours old whose queued message was lost,
    # ten or so per member, spread over every member.
    stale_created = "%s::timestamptz - interval '20 minutes' - (g * 0.2) * interval '1 second'"
    _execute(
        insert_select(
            Task,
            {
                "id": "gen_random_uuid()",
                "user_id": f"{first} + mod(g, {size.members})",
                "type": f"'{TaskType.BASIC_CLEAN}'",
                "status": f"'{TaskStatus.PENDING}'",
                "stage": "'queued'",
                "input_image_url": "'https://images.example.com/in/stale-' || g || '.jpg'",
                "params": "'{}'::jsonb",
                "result_urls": "'[]'::jsonb",
                "cost": "1",
                "created_at": stale_created,
                "updated_at": stale_created,
                "next_attempt_at": stale_created,
            },
            f"generate_series(1, {size.stale_pending + size.baseline_stale}) g",
        ),
        [now] * 3,
    )
    ledger = QuotaLedger._meta.db_table
    tasks = Task._meta.db_table
    # A charge per task and a refund per failed task; then one grant per member that leaves its
    # balance at QUOTA_HEADROOM. balance_after of these history rows is not kept (nothing reads it).
    _execute(
        f"INSERT INTO {ledger} (user_id, delta, balance_after, kind, task_id, reason, created_at) "
        f"SELECT user_id, -cost, 0, '{LedgerKind.DEDUCT}', id, '', created_at FROM {tasks}"
    )
    _execute(
        f"INSERT INTO {ledger} (user_id, delta, balance_after, kind, task_id, reason, created_at) "
        f"SELECT user_id, cost, 0, '{LedgerKind.REFUND}', id, '', completed_at FROM {tasks} "
        f"WHERE status = '{TaskStatus.FAILED}'"
    )
    _execute(
        f"INSERT INTO {ledger} (user_id, delta, balance_after, kind, reason, created_at) "
        f"SELECT u.id, {QUOTA_HEADROOM} - COALESCE(SUM(l.delta), 0), {QUOTA_HEADROOM}, '{LedgerKind.GRANT}', "
        f"'bench', %s FROM {users} u LEFT JOIN {ledger} l ON l.user_id = u.id GROUP BY u.id",
        [now - timedelta(days=100)],
    )
    _execute(f"UPDATE {users} SET quota_remaining = {QUOTA_HEADROOM}")
    task_counters_rebuild()
    with connection.cursor() as cursor:
        # Fresh bulk-loaded tables have no statistics and no visibility map yet; a real table of
        # this size has both.
        for table in (users, tasks, ledger, "tasks_taskcounter"):
            cursor.execute(f'VACUUM (ANALYZE) "{table}"')
        cursor.execute(f"SELECT status, COUNT(*) FROM {tasks} GROUP BY status")
        by_status = dict(cursor.fetchall())
        cursor.execute(f"SELECT COUNT(*) FROM {ledger}")
        ledger_rows = cursor.fetchone()[0]
    return Seeded(
        first_user_id=first,
        heavy_id=heavy,
        medium_id=medium,
        light_id=light,
        tasks=sum(by_status.values()),
        ledger_rows=ledger_rows,
        by_status=by_status,
    )


def some_task_id(user_id: int) -> uuid.UUID:
    found = Task.objects.filter(user_id=user_id).order_by("-created_at").values_list("pk", flat=True).first()
    assert found is not None
    return found
