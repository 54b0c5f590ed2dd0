"""Per-member task counters (TaskCounter: user × status × type → n), moved in the transactions that
create a task or change its status, so that the list's `total` never counts a member's history.

Lock order: a counter row is written last in its transaction (after the task row and, when quota
moves, the user row), and several counter rows in one statement are written in key order. With
every path taking locks in that one order, counter updates cannot deadlock with each other or with
the quota service.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from django.db import connection, transaction
from django.db.models import Sum

from tasks.models import ACTIVE_STATUSES, Task, TaskCounter, TaskStatus, TaskType

# (user id, status, type) → how much to add.
CounterKey = tuple[int, str, str]


def task_counters_add(*, deltas: Iterable[tuple[CounterKey, int]]) -> None:
    """Adds every delta in one statement (an upsert per counter row, in key order). The rows go
    as four arrays, so the statement stays the same size however many rows it moves."""
    summed: Counter[CounterKey] = Counter()
    for key, delta in deltas:
        summed[key] += delta
    rows = sorted((key, n) for key, n in summed.items() if n)
    if not rows:
        return
    table = TaskCounter._meta.db_table
    if connection.vendor != "postgresql":
        # The embedded default's SQLite has no arrays: one VALUES row per counter instead.
        values = ", ".join(["(%s, %s, %s, %s)"] * len(rows))
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {table} (user_id, status, type, n) VALUES {values} "  # noqa: S608 - ours
                "ON CONFLICT (user_id, status, type) DO UPDATE SET n = n + excluded.n",
                [value for (user_id, status, task_type), n in rows for value in (user_id, status, task_type, n)],
            )
        return
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (user_id, status, type, n) "  # noqa: S608 - the table name is ours
            "SELECT * FROM unnest(%s::bigint[], %s::varchar[], %s::varchar[], %s::bigint[]) "
            f"ON CONFLICT (user_id, status, type) DO UPDATE SET n = {table}.n + EXCLUDED.n",
            [
                [user_id for (user_id, _, _), _ in rows],
                [status for (_, status, _), _ in rows],
                [task_type for (_, _, task_type), _ in rows],
                [n for _, n in rows],
            ],
        )


# One task per row of `{source}` (user_id, type) moved between two statuses: one upsert per counter
# row, in key order. The sort reads every row of the source before it hands the first counter row
# to the upsert, so with a source that exists once its members are locked (quota_refund_tasks'
# `locked`) the counters are written after the members, as the lock order above requires, though
# the statement runs its parts concurrently.
_MOVE_SQL = """
task_counters_moved AS (
    INSERT INTO {counters} (user_id, status, type, n)
    SELECT s.user_id, v.status, s.type, SUM(v.n)
    FROM {source} s CROSS JOIN (VALUES (%s::varchar, -1), (%s::varchar, 1)) AS v(status, n)
    GROUP BY s.user_id, v.status, s.type
    ORDER BY s.user_id, v.status, s.type
    ON CONFLICT (user_id, status, type) DO UPDATE SET n = {counters}.n + EXCLUDED.n
)"""


def task_counters_move_sql(*, source: str, from_status: str, to_status: str) -> tuple[str, list[Any]]:
    """The counters of the tasks in `source` (user_id, type), each moved from `from_status` to
    `to_status`, as an item of the caller's WITH list (PostgreSQL only), with its parameters. The
    source must be a relation whose rows exist only once their members' rows are locked (the
    sweep's: tasks/sweep.py)."""
    sql = _MOVE_SQL.format(counters=TaskCounter._meta.db_table, source=source)
    return sql, [from_status, to_status]


def task_counted(*, user_id: int, task_type: str, from_status: str | None, to_status: str) -> None:
    """One task created (from_status None) or moved from one status to another."""
    deltas: list[tuple[CounterKey, int]] = [((user_id, to_status, task_type), 1)]
    if from_status:
        deltas.append(((user_id, from_status, task_type), -1))
    task_counters_add(deltas=deltas)


def task_count(*, user_id: int, status: TaskStatus | None = None, task_type: TaskType | None = None) -> int:
    """The member's number of tasks with the given status and type (any when None)."""
    counters = TaskCounter.objects.filter(user_id=user_id)
    if status:
        counters = counters.filter(status=status)
    if task_type:
        counters = counters.filter(type=task_type)
    return int(counters.aggregate(total=Sum("n"))["total"] or 0)


_ACTIVE_SQL = "SELECT COALESCE(SUM(n), 0) FROM {counters} WHERE user_id = %s AND status IN ({statuses})"


def task_active_count(*, user_id: int) -> int:
    """The member's unfinished tasks (pending or processing), from the counters: one index read
    however long the member's history, sent as written (it is on every order's path)."""
    statuses = ", ".join(["%s"] * len(ACTIVE_STATUSES))
    sql = _ACTIVE_SQL.format(counters=connection.ops.quote_name(TaskCounter._meta.db_table), statuses=statuses)
    with connection.cursor() as cursor:
        cursor.execute(sql, [user_id, *ACTIVE_STATUSES])
        return int(cursor.fetchone()[0])


# Counters against the tasks they count: a row wherever the two differ.
_MISMATCHES_SQL = """
SELECT COALESCE(c.user_id, t.user_id), COALESCE(c.status, t.status), COALESCE(c.type, t.type),
       COALESCE(c.n, 0), COALESCE(t.n, 0)
FROM {counters} c
FULL JOIN (SELECT user_id, status, type, COUNT(*) AS n FROM {tasks} GROUP BY user_id, status, type) t
    ON t.user_id = c.user_id AND t.status = c.status AND t.type = c.type
WHERE COALESCE(c.n, 0) <> COALESCE(t.n, 0)
ORDER BY 1, 2, 3
"""

_REBUILD_SQL = """
WITH actual AS (SELECT user_id, status, type, COUNT(*) AS n FROM {tasks} GROUP BY user_id, status, type),
zeroed AS (
    UPDATE {counters} c SET n = 0
    WHERE c.n <> 0 AND NOT EXISTS (
        SELECT 1 FROM actual a WHERE a.user_id = c.user_id AND a.status = c.status AND a.type = c.type
    )
)
INSERT INTO {counters} (user_id, status, type, n) SELECT user_id, status, type, n FROM actual
ON CONFLICT (user_id, status, type) DO UPDATE SET n = EXCLUDED.n WHERE {counters}.n <> EXCLUDED.n
"""


def _tables() -> dict[str, str]:
    return {"counters": TaskCounter._meta.db_table, "tasks": Task._meta.db_table}


def task_counter_mismatches() -> list[tuple[int, str, str, int, int]]:
    """(user id, status, type, counter, actual count) wherever a counter is wrong."""
    with connection.cursor() as cursor:
        cursor.execute(_MISMATCHES_SQL.format(**_tables()))
        return [tuple(row) for row in cursor.fetchall()]


def task_counters_rebuild() -> None:
    """Sets every counter to the count of its tasks. Status changes wait meanwhile (the counters
    are locked against writes), so the counts cannot drift while they are taken."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"LOCK TABLE {TaskCounter._meta.db_table} IN SHARE ROW EXCLUSIVE MODE")
        cursor.execute(_REBUILD_SQL.format(**_tables()))
