"""The timeout sweep alone, at scale: N stale pending tasks over N/10 members, with their charges,
failed and refunded by one `tasks_sweep()`; then the books are checked.

    .venv/bin/python -m bench.sweep_scale [N] [--history H] [--batch B] [--explain]

N (default 100,000) stale tasks; H finished tasks of the same members besides them (default 0;
the full bench has about a million, a tenth of them failed and refunded), for tables and indexes
the size of a busy service's; B overrides the sweep's batch size; --explain prints the plans of
the first batches' statements (row counts, times, buffers). Prints the load average, the sweep's
seconds, statements and tasks per second, the time of each kind of statement per batch and the
time outside the statements (commit, the after-commit work, Python), then checks: every stale task
failed once with one event and one refund, oldest first; balances equal the ledger sums and every
balance_after is the running sum; the counters equal the counts. Exits 1 when a check fails.

The database is a throw-away one (bench/environment.py; BENCH_DATABASE, default bench_sweep_scale
here), and the cache and broker use Redis databases 13 and 14, so that the run can share the
machine with a full bench."""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from bench import environment

HEADROOM = 1_000_000
REDIS_DATABASES = {3: 13, 4: 14}


@dataclass
class Clock:
    """Seconds spent in each kind of statement, in commits and in after-commit work."""

    statements: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    commits: list[float] = field(default_factory=list)
    hooks: list[float] = field(default_factory=list)

    def record(self, execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any) -> Any:
        began = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.statements[_kind(sql)].append(time.perf_counter() - began)

    @property
    def count(self) -> int:
        return sum(len(times) for times in self.statements.values())


def _kind(sql: str) -> str:
    """A short name for a statement: its first words, whether it locks, the tables it writes."""
    head = " ".join(sql.split()[:3])[:40]
    writes = sorted(set(re.findall(r"(?:(?<!FOR )UPDATE|INSERT INTO)\s+\"?(\w+)", sql)) - {"OF", "SET"})
    locks = " FOR UPDATE" if "FOR UPDATE" in sql or "FOR NO KEY UPDATE" in sql else ""
    return f"{head}{locks}" + (f" -> {','.join(writes)}" if writes else "")


@contextmanager
def timed(clock: Clock) -> Iterator[None]:
    from django.db import connection as default

    # The backend's own commit and hook runner, wrapped on this one connection object.
    connection: Any = default
    commit, run_hooks = connection._commit, connection.run_and_clear_commit_hooks

    def timed_commit() -> None:
        began = time.perf_counter()
        try:
            commit()
        finally:
            clock.commits.append(time.perf_counter() - began)

    def timed_hooks() -> None:
        began = time.perf_counter()
        try:
            run_hooks()
        finally:
            clock.hooks.append(time.perf_counter() - began)

    connection._commit = timed_commit
    connection.run_and_clear_commit_hooks = timed_hooks
    try:
        with connection.execute_wrapper(clock.record):
            yield
    finally:
        del connection._commit
        del connection.run_and_clear_commit_hooks


def _execute(sql: str, params: Any = None) -> list[tuple[Any, ...]]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall() if cursor.description else []


def seed(*, stale: int, history: int) -> None:
    """Members, their stale pending tasks (20 minutes to 20 minutes + stale/5 s old) and `history`
    finished ones (a tenth failed and refunded), a grant and one charge per task with right
    balances, and the counters."""
    from django.contrib.auth.hashers import make_password
    from django.utils import timezone

    from accounts.models import User
    from bench.sqlgen import insert_select
    from quota.models import LedgerKind, QuotaLedger
    from tasks.counters import task_counters_rebuild
    from tasks.models import Task, TaskStatus, TaskType

    now = timezone.now()
    members = max(1, stale // 10)
    _execute(
        insert_select(
            User,
            {
                "username": "'sweep_' || lpad(g::text, 7, '0')",
                "password": "%(password)s",
                "is_member": "true",
                "is_active": "true",
                "quota_expire_at": "%(expire)s",
                "date_joined": "%(now)s",
            },
            f"generate_series(1, {members}) g",
        ),
        {"password": make_password(None), "expire": now + timedelta(days=365), "now": now},
    )
    first = User.objects.order_by("pk").values_list("pk", flat=True).first()
    if history:
        done = "%(now)s::timestamptz - interval '1 hour' - mod(g, 7776000) * interval '1 second'"
        failed = f"mod(g / {members}, 10) = 0"
        _execute(
            insert_select(
                Task,
                {
                    "id": "gen_random_uuid()",
                    "user_id": f"{first} + mod(g, {members})",
                    "type": f"'{TaskType.BASIC_CLEAN}'",
                    "status": f"CASE WHEN {failed} THEN '{TaskStatus.FAILED}' ELSE '{TaskStatus.SUCCESS}' END",
                    "stage": "'done'",
                    "input_image_url": "'https://images.example.com/in/' || g || '.jpg'",
                    "result_urls": f"CASE WHEN {failed} THEN '[]'::jsonb "
                    "ELSE '[\"https://cdn.example.com/r/1.png\"]'::jsonb END",
                    "error_message": f"CASE WHEN {failed} THEN '任务超时(10分钟未处理)' ELSE '' END",
                    "failure_code": f"CASE WHEN {failed} THEN 'timeout' ELSE '' END",
                    "cost": "1",
                    "created_at": done,
                    "updated_at": f"{done} + interval '40 seconds'",
                    "started_at": f"{done} + interval '2 seconds'",
                    "completed_at": f"{done} + interval '40 seconds'",
                },
                f"generate_series(1, {history}) g",
            ),
            {"now": now},
        )
    created = "%(now)s::timestamptz - interval '20 minutes' - (g * 0.2) * interval '1 second'"
    _execute(
        insert_select(
            Task,
            {
                "id": "gen_random_uuid()",
                "user_id": f"{first} + mod(g, {members})",
                "type": f"'{TaskType.BASIC_CLEAN}'",
                "status": f"'{TaskStatus.PENDING}'",
                "stage": "'queued'",
                "input_image_url": "'https://images.example.com/in/stale-' || g || '.jpg'",
                "cost": "1",
                "created_at": created,
                "updated_at": created,
                "next_attempt_at": created,
            },
            f"generate_series(1, {stale}) g",
        ),
        {"now": now},
    )
    ledger, tasks, users = QuotaLedger._meta.db_table, Task._meta.db_table, User._meta.db_table
    _execute(
        f"INSERT INTO {ledger} (user_id, delta, balance_after, kind, reason, created_at) "
        f"SELECT id, {HEADROOM}, {HEADROOM}, '{LedgerKind.GRANT}', 'bench', %s FROM {users}",
        [now - timedelta(days=100)],
    )
    # A charge per task, and a refund per failed one, in time order after the grant: every
    # balance_after is the running sum, as the checks expect.
    _execute(
        f"INSERT INTO {ledger} (user_id, delta, balance_after, kind, task_id, reason, created_at) "
        f"SELECT user_id, delta, {HEADROOM} + SUM(delta) OVER (PARTITION BY user_id ORDER BY at, task_id, seq), "
        "kind, task_id, '', at FROM ("
        f"SELECT user_id, -cost AS delta, '{LedgerKind.DEDUCT}' AS kind, id AS task_id, created_at AS at, 0 AS seq "
        f"FROM {tasks} UNION ALL "
        f"SELECT user_id, cost, '{LedgerKind.REFUND}', id, completed_at, 1 FROM {tasks} WHERE status = %s"
        ") moves ORDER BY at, task_id, seq",
        [TaskStatus.FAILED],
    )
    _execute(
        f"UPDATE {users} u SET quota_remaining = c.n "
        f"FROM (SELECT user_id, SUM(delta) AS n FROM {ledger} GROUP BY user_id) c WHERE c.user_id = u.id"
    )
    task_counters_rebuild()
    for table in (users, tasks, ledger, "tasks_taskcounter", "tasks_taskevent"):
        _execute(f'VACUUM (ANALYZE) "{table}"')


def checks(*, stale: int) -> dict[str, int]:
    """Each number must be 0."""
    from quota.models import LedgerKind, QuotaLedger
    from quota.selectors import quota_mismatches
    from tasks.counters import task_counter_mismatches
    from tasks.models import Task, TaskEvent, TaskStatus

    ledger, tasks, events = QuotaLedger._meta.db_table, Task._meta.db_table, TaskEvent._meta.db_table
    [(wrong_balance_after,)] = _execute(
        f"SELECT COUNT(*) FROM (SELECT balance_after, "
        f"SUM(delta) OVER (PARTITION BY user_id ORDER BY id) AS running FROM {ledger}) l "
        "WHERE balance_after <> running"
    )
    [(out_of_order,)] = _execute(
        f"SELECT COUNT(*) FROM (SELECT t.created_at, LAG(t.created_at) OVER (ORDER BY e.id) AS before "
        f"FROM {events} e JOIN {tasks} t ON t.id = e.task_id WHERE e.to_status = %s) o "
        "WHERE o.created_at < o.before",
        [TaskStatus.FAILED],
    )
    # The stale tasks are the ones with an event (the seeded history has none).
    [(swept, not_once)] = _execute(
        f"SELECT COUNT(*), COUNT(*) FILTER (WHERE t.status <> %s OR e.n <> 1 OR "
        f"(SELECT COUNT(*) FROM {ledger} r WHERE r.task_id = t.id AND r.kind = %s) <> 1) "
        f"FROM {tasks} t JOIN (SELECT task_id, COUNT(*) AS n FROM {events} GROUP BY task_id) e ON e.task_id = t.id",
        [TaskStatus.FAILED, LedgerKind.REFUND],
    )
    [(refunded_twice,)] = _execute(
        f"SELECT COUNT(*) FROM (SELECT task_id FROM {ledger} WHERE kind = %s GROUP BY task_id HAVING COUNT(*) > 1) r",
        [LedgerKind.REFUND],
    )
    return {
        "stale tasks not failed": stale - swept + Task.objects.filter(status=TaskStatus.PENDING).count(),
        "swept tasks without exactly one event and one refund": not_once,
        "tasks refunded twice": refunded_twice,
        "balances off the ledger": len(quota_mismatches()),
        "wrong balance_after": wrong_balance_after,
        "failed out of age order": out_of_order,
        "wrong counters": len(task_counter_mismatches()),
    }


def explain_first_batches() -> None:
    """Plans with row counts, times and buffers (auto_explain, sent to this client) of the first
    twelve statements that take longer than a millisecond."""
    from django.db import connection

    connection.ensure_connection()
    printed: list[str] = []

    def show(diagnostic: Any) -> None:
        if len(printed) >= 12:
            return
        duration, *lines = diagnostic.message_primary.splitlines()
        plan = next((n for n, line in enumerate(lines) if "(cost=" in line), 0)
        printed.append(duration)
        print("\n".join([duration, " ".join(" ".join(lines[:plan]).split())[:160], *lines[plan:]]), flush=True)

    connection.connection.add_notice_handler(show)
    for setting in (
        "LOAD 'auto_explain'",
        "SET auto_explain.log_min_duration = 1",
        "SET auto_explain.log_analyze = on",
        "SET auto_explain.log_buffers = on",
        "SET auto_explain.log_triggers = on",
        "SET auto_explain.log_level = notice",
        "SET client_min_messages = notice",
    ):
        _execute(setting)


def _load() -> str:
    return " ".join(f"{load:.2f}" for load in os.getloadavg())


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.sweep_scale")
    parser.add_argument("stale", nargs="?", type=int, default=100_000)
    parser.add_argument("--history", type=int, default=0)
    parser.add_argument("--batch", type=int)
    parser.add_argument("--explain", action="store_true")
    options = parser.parse_args(argv)
    stale, history = options.stale, options.history
    os.environ.setdefault("BENCH_DATABASE", "bench_sweep_scale")
    redis = environment._redis
    environment._redis = lambda db: redis(REDIS_DATABASES.get(db, db))
    with environment.bench_django():
        from django.core.management import call_command

        from tasks import sweep

        if options.batch:
            sweep.SWEEP_BATCH = options.batch
        call_command("migrate", verbosity=0, interactive=False)
        began = time.perf_counter()
        seed(stale=stale, history=history)
        print(
            f"seeded {stale:,} stale tasks over {max(1, stale // 10):,} members"
            f" (+{history:,} finished) in {time.perf_counter() - began:.0f}s",
            flush=True,
        )
        if options.explain:
            explain_first_batches()
        print(f"load average before: {_load()}", flush=True)
        clock = Clock()
        with timed(clock):
            began = time.perf_counter()
            report = sweep.tasks_sweep()
            seconds = time.perf_counter() - began
        print(f"load average after:  {_load()}")
        batches = max(1, -(-report.failed_pending // sweep.SWEEP_BATCH))
        print(
            f"swept {report.failed_pending:,} in {seconds:.2f}s: {report.failed_pending / seconds:,.0f} tasks/s, "
            f"{clock.count} statements, batch {sweep.SWEEP_BATCH} ({batches} batches)"
        )
        in_statements = 0.0
        print(f"{'per batch':>12} {'total s':>8}  statement")
        for kind, times in sorted(clock.statements.items(), key=lambda item: -sum(item[1])):
            in_statements += sum(times)
            print(f"{1000 * sum(times) / batches:9.1f} ms {sum(times):8.2f}  {kind} (x{len(times)})")
        other = seconds - in_statements - sum(clock.commits) - sum(clock.hooks)
        for name, total in (("commit", sum(clock.commits)), ("after-commit work", sum(clock.hooks)), ("rest", other)):
            print(f"{1000 * total / batches:9.1f} ms {total:8.2f}  {name}")
        failures = {name: n for name, n in checks(stale=stale).items() if n}
        print(f"checks: {failures or 'all 0'}")
        return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
