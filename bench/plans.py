"""Plans of the hot look-ups, taken from the SQL the code itself sends: each path runs once under
a recorder and the recorded statement is explained with its own parameters."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.db import connection, transaction
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from bench.images import png_file
from bench.recorder import Executed, recording
from tasks.models import Task
from tasks.sweep import _requeue_overdue, tasks_sweep

TASK_TABLE = Task._meta.db_table


@dataclass(frozen=True)
class Plan:
    name: str
    expected_indexes: tuple[str, ...]
    indexes: list[str]
    top_nodes: str
    rows: int
    execution_ms: float
    planning_ms: float
    shared_hit: int
    shared_read: int
    text: str
    sql: str

    @property
    def uses_expected(self) -> bool:
        return any(name in self.indexes for name in self.expected_indexes)


@dataclass(frozen=True)
class Probe:
    name: str
    expected_indexes: tuple[str, ...]
    query: Executed


def _indexes_leading_on(column: str) -> tuple[str, ...]:
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, TASK_TABLE)
    return tuple(name for name, c in constraints.items() if c["index"] and c["columns"][:1] == [column])


def _walk(node: dict[str, Any]) -> list[dict[str, Any]]:
    found = [node]
    for child in node.get("Plans", []):
        found.extend(_walk(child))
    return found


def _explain(probe: Probe) -> Plan:
    statement = probe.query
    # Rolled back: the due-work look-up is SELECT ... FOR UPDATE and would otherwise keep its locks
    # until the connection's next commit.
    with transaction.atomic(), connection.cursor() as cursor:
        # The first run warms the buffer cache so the figures describe the steady state.
        cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {statement.sql}", statement.params)
        cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {statement.sql}", statement.params)
        raw = cursor.fetchone()[0]
        document = (json.loads(raw) if isinstance(raw, str) else raw)[0]
        cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {statement.sql}", statement.params)
        text = "\n".join(row[0] for row in cursor.fetchall())
        sql = cursor.mogrify(statement.sql, statement.params)
        transaction.set_rollback(True)
    root = document["Plan"]
    nodes = _walk(root)
    indexes = list(dict.fromkeys(n["Index Name"] for n in nodes if "Index Name" in n))
    chain = []
    for node in nodes[:4]:
        label = node["Node Type"]
        if "Index Name" in node:
            label += f" using {node['Index Name']}"
        chain.append(label)
    return Plan(
        name=probe.name,
        expected_indexes=probe.expected_indexes,
        indexes=indexes,
        top_nodes=" → ".join(chain),
        rows=int(root.get("Actual Rows", 0)),
        execution_ms=float(document["Execution Time"]),
        planning_ms=float(document["Planning Time"]),
        shared_hit=int(root.get("Shared Hit Blocks", 0)),
        shared_read=int(root.get("Shared Read Blocks", 0)),
        text=text,
        sql=sql,
    )


def _only(queries: list[Executed], what: str, count: int = 1) -> list[Executed]:
    if len(queries) != count:
        raise RuntimeError(f"expected {count} task look-ups for {what}, recorded {len(queries)}")
    return queries


@dataclass(frozen=True)
class ProbeResult:
    plans: list[Plan]
    queries_per_request: dict[str, int]


def probe(*, client: Client, username: str, password: str, task_id: str, vendor_task_id: str) -> ProbeResult:
    per_request: dict[str, int] = {}
    probes: list[Probe] = []

    with recording() as rec:
        answer = client.post("/api/auth/login", {"username": username, "password": password}, "application/json")
    assert answer.status_code == 200, answer.content
    per_request["login"] = len(rec.queries)
    auth = {"Authorization": f"Bearer {answer.json()['data']['token']}"}

    with recording() as rec:
        answer = client.post("/api/media/upload", {"file": png_file()}, headers=auth)
    assert answer.status_code == 201, answer.content
    per_request["upload"] = len(rec.queries)
    upload_url = answer.json()["data"]["url"]

    with recording() as rec:
        answer = client.get("/api/task/list", {"limit": 20}, headers=auth)
    assert answer.status_code == 200, answer.content
    per_request["list"] = len(rec.queries)
    count, page = _only(rec.selects_from(TASK_TABLE), "the list", 2)
    # Any index that leads on user_id serves the count; the planner picks the narrowest.
    probes.append(Probe("list: total (COUNT)", _indexes_leading_on("user_id"), count))
    probes.append(Probe("list: newest 20", ("task_user_recent",), page))

    with recording() as rec:
        answer = client.get(f"/api/task/{task_id}", headers=auth)
    assert answer.status_code == 200, answer.content
    per_request["detail"] = len(rec.queries)
    probes.append(Probe("detail by id", (f"{TASK_TABLE}_pkey",), _only(rec.selects_from(TASK_TABLE), "detail")[0]))

    with recording() as rec:
        answer = client.post(
            "/api/task/create", {"type": "basic_clean", "inputImageUrl": upload_url}, "application/json", headers=auth
        )
    assert answer.status_code == 201, answer.content
    per_request["create"] = len(rec.queries)

    with recording() as rec:
        answer = client.post(
            f"{reverse('runninghub-webhook')}?{urlencode({'token': settings.RUNNINGHUB_WEBHOOK_SECRET})}",
            {"taskId": vendor_task_id, "eventData": "{}"},
            "application/json",
        )
    assert answer.status_code == 200, answer.content
    probes.append(Probe("webhook: vendor id", ("task_vendor_id",), _only(rec.selects_from(TASK_TABLE), "webhook")[0]))

    with recording() as rec:
        tasks_sweep(dry_run=True)
    pending, processing = _only(rec.selects_from(TASK_TABLE), "the sweep's stale look-ups", 2)
    probes.append(Probe("sweep: stale pending", ("task_status_created",), pending))
    probes.append(Probe("sweep: stale processing", ("task_status_created",), processing))

    # The sweep's requeue step is the due-work look-up; run inside a rolled-back transaction its
    # update and its enqueues (on commit) never happen.
    with transaction.atomic(), recording() as rec:
        _requeue_overdue(timezone.now())
        transaction.set_rollback(True)
    probes.append(
        Probe("sweep: due work (requeue)", ("task_active_due",), _only(rec.selects_from(TASK_TABLE), "due")[0])
    )

    return ProbeResult(plans=[_explain(p) for p in probes], queries_per_request=per_request)
