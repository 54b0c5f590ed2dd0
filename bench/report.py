"""Tables for the console and for BENCHMARKS.md. The generated part of the file is rewritten on
every run; what follows NOTES_MARKER is written by people and kept."""

from __future__ import annotations

import os
import platform
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import django
import gunicorn
from django.db import connection
from django.utils import timezone

from bench.load import Result
from bench.plans import ProbeResult
from bench.seed import Seeded, SeedSize
from bench.sweep import SweepRun

NOTES_MARKER = "<!-- Everything below this line is hand-written and kept by `python -m bench`. -->"
QUERY_KEYS = {
    "GET /api/task/list": "list",
    "GET /api/task/{id}": "detail",
    "POST /api/task/create": "create",
    "POST /api/auth/login": "login",
}


@dataclass(frozen=True)
class Facts:
    size: SeedSize
    seeded: Seeded
    timings: dict[str, float]
    workers: int
    concurrency: int
    purged_messages: Any


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_gib() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 1024 / 1024:.0f} GiB"
    except OSError:
        pass
    return "unknown"


def _postgres() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        version = cursor.fetchone()[0]
        cursor.execute("SHOW shared_buffers")
        buffers = cursor.fetchone()[0]
    return f"PostgreSQL {version} (shared_buffers {buffers})"


def _queries_for(name: str, probes: ProbeResult) -> str:
    for prefix, key in QUERY_KEYS.items():
        if name.startswith(prefix):
            return str(probes.queries_per_request.get(key, ""))
    return ""


def _http_rows(results: list[Result], probes: ProbeResult) -> list[list[str]]:
    return [
        [
            r.name,
            f"{r.count:,}",
            str(r.errors),
            f"{r.percentile_ms(50):.1f}",
            f"{r.percentile_ms(95):.1f}",
            f"{r.percentile_ms(99):.1f}",
            f"{r.throughput:.0f}" if r.throughput >= 10 else f"{r.throughput:.1f}",
            _queries_for(r.name, probes),
        ]
        for r in results
    ]


HTTP_HEADER = ["endpoint", "requests", "errors", "p50 ms", "p95 ms", "p99 ms", "req/s", "SQL/request"]
PLAN_HEADER = ["look-up", "expected index", "indexes in the plan", "rows", "exec ms", "buffers hit/read", "top of plan"]
SWEEP_HEADER = ["run", "failed pending", "requeued", "seconds", "queries", "queries per failed task"]


def _plan_rows(probes: ProbeResult) -> list[list[str]]:
    return [
        [
            p.name,
            " or ".join(p.expected_indexes) + ("" if p.uses_expected else " **(not used)**"),
            ", ".join(p.indexes) or "none (sequential scan)",
            f"{p.rows:,}",
            f"{p.execution_ms:.2f}",
            f"{p.shared_hit}/{p.shared_read}",
            p.top_nodes,
        ]
        for p in probes.plans
    ]


def _sweep_rows(sweeps: list[SweepRun]) -> list[list[str]]:
    return [
        [
            str(n),
            f"{s.report.failed_pending:,}",
            f"{s.report.requeued:,}",
            f"{s.seconds:.2f}",
            f"{s.queries:,}",
            f"{s.queries / s.report.failed:.1f}" if s.report.failed else "–",
        ]
        for n, s in enumerate(sweeps, start=1)
    ]


def _markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def _plain_table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(cell) for cell in column) for column in zip(header, *rows, strict=True)]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in [header, *rows]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def console(*, results: list[Result], probes: ProbeResult, sweeps: list[SweepRun]) -> str:
    errors = [f"{r.name}: first error: {r.first_error}" for r in results if r.errors]
    return "\n\n".join(
        [
            _plain_table(HTTP_HEADER, _http_rows(results, probes)),
            _plain_table(PLAN_HEADER, _plan_rows(probes)),
            _plain_table(SWEEP_HEADER, _sweep_rows(sweeps)),
            *errors,
        ]
    )


def render(*, facts: Facts, results: list[Result], probes: ProbeResult, sweeps: list[SweepRun]) -> str:
    size, seeded = facts.size, facts.seeded
    statuses = ", ".join(f"{status} {count:,}" for status, count in sorted(seeded.by_status.items()))
    total_failed = sum(s.report.failed_pending for s in sweeps)
    total_seconds = sum(s.seconds for s in sweeps if s.report.failed_pending)
    plans_text = "\n\n".join(f"{p.name}\n\n{p.sql}\n\n{p.text}" for p in probes.plans)
    return f"""# Benchmarks

Measured on {timezone.now().date().isoformat()} (UTC) by `python -m bench` (`make bench`). The numbers below are
rewritten by every run; the notes at the end are not.

## Method

- **Machine:** {_cpu_model()}, {os.cpu_count()} cores, {_memory_gib()} RAM; {platform.platform()}.
  Python {sys.version.split()[0]}, Django {django.get_version()}, gunicorn {gunicorn.__version__},
  {_postgres()}, Redis on the same host. Server, database and load client share the cores.
- **Commands:** `make bench`, or `cd /work/main && .venv/bin/python -m bench`. It needs the
  PostgreSQL and Redis of `make services` and nothing else, and takes about
  {facts.timings["total"]:.0f} s.
- **Database:** `bench_photo`, dropped and created again on every run and dropped at the end;
  all migrations applied ({facts.timings["migrate"]:.1f} s). Settings: `bench.settings`, which is
  `config.test_settings` with Django's default (PBKDF2) password hasher so that login costs what it
  costs in production; cache on Redis db 3, Celery broker on Redis db 4 (no worker; the
  {facts.purged_messages} messages queued by the run are purged at the end), throttles raised to
  100000/min.
- **Data** (bulk-inserted in {facts.timings["seed"]:.1f} s, then `VACUUM ANALYZE`): {size.users} users,
  {seeded.tasks:,} tasks over 90 days ({statuses}), {size.heavy_tasks:,} of them owned by one heavy
  user and the rest spread evenly over the others; {size.pose12_share:.0%} are `model_pose12` with
  a RunningHub id. The {size.stale_pending:,} pending tasks are past the pending timeout with a due
  time in the past (their queued message was lost); the {size.processing} processing tasks are
  recent with a future due time. The quota ledger has {seeded.ledger_rows:,} rows (a grant per
  user, a charge per task, a refund per failed task).
- **HTTP:** gunicorn `config.wsgi`, {facts.workers} sync workers, on a free loopback port. The
  client is {facts.concurrency} threads, each with its own keep-alive `requests.Session`, sending
  back to back after a short warm-up, until the request cap or 15 s, whichever comes first.
  List and detail read as the heavy user (detail picks random ids among its tasks); create runs as
  {facts.concurrency} different users (each has its own upload from `/api/media/upload`), so it
  measures the work of a create and not a queue on one user's row lock; login cycles over
  {facts.concurrency} users. Latency is per request as the client sees it; req/s is completed
  requests over the measured wall time. "SQL/request" is counted on the same request made once
  in-process through Django's test client.
- **Plans:** each hot path runs once in-process with a recorder on the connection; the statement
  it sent is then run under `EXPLAIN (ANALYZE, BUFFERS)` with its own parameters (twice, keeping
  the second, warm run). The due-work look-up is the sweep's requeue step, run in a transaction
  that is rolled back.
- **Sweep:** `tasks.sweep.tasks_sweep()` in-process, repeated until a run finds nothing.

## HTTP ({facts.workers} gunicorn workers, {facts.concurrency} client threads)

{_markdown_table(HTTP_HEADER, _http_rows(results, probes))}

## Hot queries on {seeded.tasks:,} tasks

{_markdown_table(PLAN_HEADER, _plan_rows(probes))}

## Sweep: {size.stale_pending:,} stale pending tasks

{_markdown_table(SWEEP_HEADER, _sweep_rows(sweeps))}

In all {total_failed:,} tasks were failed and refunded in {total_seconds:.2f} s of sweeping.

<details><summary>Plans as measured</summary>

```
{plans_text}
```

</details>
"""


def write(path: Path, generated: str) -> None:
    notes = ""
    if path.exists():
        previous = path.read_text()
        if NOTES_MARKER in previous:
            notes = previous.split(NOTES_MARKER, 1)[1]
    path.write_text(f"{generated}\n{NOTES_MARKER}\n{notes.lstrip(chr(10))}")
