"""The create transaction as plain SQL, for the baselines that do it without the product: the DRF
peer and the WSGI floor (psycopg placeholders) and pgbench (its variables)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from accounts.models import User
from bench.sqlgen import insert_values
from quota.models import LedgerKind, QuotaLedger
from tasks.models import Task, TaskStatus, TaskType


def statements(var: Callable[[str], str]) -> dict[str, str]:
    """lock → deduct (returns the balance) → task → ledger; `var(name)` writes a placeholder."""
    users = User._meta.db_table
    return {
        "lock": f"SELECT quota_remaining, is_member FROM {users} WHERE id = {var('user')} FOR UPDATE",
        "deduct": f"UPDATE {users} SET quota_remaining = quota_remaining - 1 "
        f"WHERE id = {var('user')} RETURNING quota_remaining",
        "task": insert_values(
            Task,
            {
                "id": var("task"),
                "user_id": var("user"),
                "type": f"'{TaskType.BASIC_CLEAN}'",
                "status": f"'{TaskStatus.PENDING}'",
                "input_image_url": var("url"),
                "cost": "1",
                "created_at": var("now"),
                "updated_at": var("now"),
                "next_attempt_at": var("now"),
            },
        ),
        "ledger": f"INSERT INTO {QuotaLedger._meta.db_table} "
        "(user_id, delta, balance_after, kind, task_id, reason, created_at) "
        f"VALUES ({var('user')}, -1, {var('balance')}, '{LedgerKind.DEDUCT}', {var('task')}, '创建任务', {var('now')})",
    }


def write_for_apps(path: Path) -> Path:
    path.write_text(json.dumps(statements(lambda name: f"%({name})s")))
    return path


def pgbench_script(path: Path, *, first_user: int, members: int) -> Path:
    """The same four statements; the task id comes from the lock statement (\\gset), as the apps
    make theirs in Python, so the transaction has the same round trips."""
    sql = statements(lambda name: {"now": "now()", "url": "'https://images.example.com/x.jpg'"}.get(name, f":{name}"))
    lock = sql["lock"].replace(
        "SELECT quota_remaining, is_member", "SELECT quota_remaining, is_member, gen_random_uuid() AS task"
    )
    deduct = sql["deduct"].replace("RETURNING quota_remaining", "RETURNING quota_remaining AS balance")
    path.write_text(
        f"\\set user random({first_user}, {first_user + members - 1})\n"
        "BEGIN;\n"
        f"{lock} \\gset\n"
        f"{deduct} \\gset\n"
        f"{sql['task']};\n"
        f"{sql['ledger']};\n"
        "END;\n"
    )
    return path
