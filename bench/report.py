"""Tables for the console and for BENCHMARKS.md. The generated part of the file is rewritten on
every run; what follows NOTES_MARKER is written by people and kept."""

from __future__ import annotations

import math
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
from bench.profile import Profile
from bench.seed import Seeded, SeedSize
from bench.server import THREADS, WORKERS
from bench.sweep import SweepRun

NOTES_MARKER = "<!-- Everything below this line is hand-written and kept by `python -m bench`. -->"


@dataclass(frozen=True)
class Facts:
    size: SeedSize
    seeded: Seeded
    seed_seconds: float
    total_seconds: float
    purged_messages: Any
    mismatches: dict[str, int]
    hash_ms: dict[str, float]


@dataclass(frozen=True)
class ListSql:
    member: str
    history: int
    count_ms: float
    counters_ms: float
    offset_ms: float
    keyset_ms: float


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


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = [header, ["---"] * len(header), *rows]
    return "\n".join("| " + " | ".join(cells) + " |" for cells in lines)


def _ms(value: float) -> str:
    return "–" if math.isnan(value) else f"{value:.1f}"


def _find(results: list[Result], start: str) -> Result:
    return next(r for r in results if r.name.startswith(start))


def _http_rows(results: list[Result]) -> list[list[str]]:
    return [
        [
            r.name,
            str(r.connections),
            f"{r.requests:,}",
            str(r.errors),
            _ms(r.p50_ms),
            _ms(r.p95_ms),
            _ms(r.p99_ms),
            f"{r.throughput:,.0f}",
        ]
        for r in results
    ]


def render(
    *, facts: Facts, results: list[Result], sweeps: list[SweepRun], list_sql: list[ListSql], profiled: Profile
) -> str:
    size, seeded = facts.size, facts.seeded
    product = _find(results, "POST /api/task/create (product)")
    peer = _find(results, "POST /api/task/create (drf-peer)")
    floor = _find(results, "POST /api/task/create (floor)")
    pgbench = _find(results, "pgbench")
    baseline, swept = sweeps
    login = _find(results, "POST /api/auth/login (1")
    heavy_list, light_list = (
        _find(results, "GET /api/task/list?limit=20 (heavy"),
        _find(results, "GET /api/task/list?limit=20 (light"),
    )
    offset_page, keyset_page = (
        _find(results, "GET /api/task/list?limit=20&offset"),
        _find(results, "GET /api/task/list?limit=20&after"),
    )
    ratios = [
        ["create: product / DRF peer (req/s)", f"{product.throughput / peer.throughput:.2f}"],
        ["create: product / WSGI floor (req/s)", f"{product.throughput / floor.throughput:.2f}"],
        ["create: product / pgbench of the same SQL (tx/s)", f"{product.throughput / pgbench.throughput:.2f}"],
        ["create: DRF peer / WSGI floor (req/s)", f"{peer.throughput / floor.throughput:.2f}"],
        [
            f"list p50: heavy ({list_sql[0].history:,} tasks) / light ({list_sql[-1].history:,})",
            f"{heavy_list.p50_ms / light_list.p50_ms:.2f}",
        ],
        ["list p50, heavy member's last page: offset / after", f"{offset_page.p50_ms / keyset_page.p50_ms:.1f}"],
        [
            f"list total, heavy member: COUNT(*) / counters (SQL ms {list_sql[0].count_ms:.2f} / "
            f"{list_sql[0].counters_ms:.3f})",
            f"{list_sql[0].count_ms / list_sql[0].counters_ms:.0f}",
        ],
        [
            f"sweep: set-based / row-by-row (tasks per second, {swept.per_second:,.0f} / {baseline.per_second:,.0f})",
            f"{swept.per_second / baseline.per_second:.0f}",
        ],
        [
            f"login: PBKDF2 check / Argon2id check (ms {facts.hash_ms['pbkdf2_sha256']:.0f} / "
            f"{facts.hash_ms['argon2']:.0f})",
            f"{facts.hash_ms['pbkdf2_sha256'] / facts.hash_ms['argon2']:.1f}",
        ],
    ]
    by_status = ", ".join(f"{status} {count:,}" for status, count in sorted(seeded.by_status.items()))
    total_watched = max(profiled.samples, 1)
    watched_rows = [[name, f"{count / total_watched:.0%}"] for name, count in profiled.watched.items()]
    leaf_rows = [[name.replace("|", "/"), f"{count / total_watched:.1%}"] for name, count in profiled.top_self]
    return f"""# Benchmarks

Measured on {timezone.now().date().isoformat()} (UTC) by `make bench` (`.venv/bin/python -m bench`) in
{facts.total_seconds:.0f} s. Every figure below is one run; each measure ran beside its baseline in the
same invocation, so compare the ratios, not the milliseconds. The generated part ends at the marker;
the notes after it are hand-written.

## Ratios

{_table(["measure", "ratio"], ratios)}

Login p50 over HTTP, one client at a time: **{login.p50_ms:.0f} ms** (Argon2id m=19 MiB, t=2, p=1).
The set-based sweep failed and refunded **{swept.failed:,}** stale tasks over {size.members:,} members in
**{swept.seconds:.1f} s** ({swept.statements:,} statements); the row-by-row baseline took
{baseline.seconds:.1f} s for the oldest {baseline.failed:,} ({baseline.statements:,} statements).
After both: {facts.mismatches["quota"]} members whose balance differs from their ledger,
{facts.mismatches["counters"]} wrong task counters.

## Method

- **Machine:** {_cpu_model()}, {os.cpu_count()} cores, {_memory_gib()} RAM; {platform.platform()}.
  Python {sys.version.split()[0]}, Django {django.get_version()}, gunicorn {gunicorn.__version__},
  {_postgres()}, Redis on the same host. Server, database and load generator share the cores.
- **Database:** a throw-away database created and dropped by the run, all migrations applied, then
  filled by PostgreSQL itself (INSERT … SELECT over generate_series, {facts.seed_seconds:.0f} s with
  `VACUUM ANALYZE`): {size.members:,} members; {seeded.tasks:,} tasks ({by_status}) —
  {size.heavy_tasks:,} of one heavy member, {size.medium_tasks:,} of a medium one, the rest spread
  evenly (about {(size.tasks - size.heavy_tasks - size.medium_tasks) // max(size.members - 2, 1)} each), plus
  {size.stale_pending + size.baseline_stale:,} pending tasks 20 minutes to 6 hours old for the sweep; a
  charge per task, a refund per failed task and a grant per member in the ledger ({seeded.ledger_rows:,}
  rows); the task counters rebuilt from the tasks. `BENCH_SCALE=0.1 make bench` scales every count.
- **Sweep:** first the row-by-row loop the product used to run (bench/sweep.py: one `task_fail` per
  task, oldest first) over the oldest {size.baseline_stale:,}, then one `tasks_sweep()` over the rest. Both
  in-process; statements counted by an execute wrapper.
- **HTTP:** each app under gunicorn, {WORKERS} gthread workers × {THREADS} threads, DEBUG off, no access
  log; load by `wrk` (C, 2 threads) with bench/load.lua, which takes the next member's token and body for
  every request. Create: {product.connections} connections over 1,000 members, each with its own upload
  made through the media service, `basic_clean`, {product.seconds:.0f} s per app. The product is
  `config.wsgi` with the bench's settings (the test settings with throttle rates raised and the
  project's password hashers); the **DRF peer** (bench/peers/drf_app.py) is a plain DRF + simplejwt
  function view, and the **floor** (bench/peers/floor.py) a bare WSGI function on psycopg and PyJWT;
  both run the create transaction (lock the member, deduct, insert the task, insert the ledger row)
  with the statements bench/create_sql.py builds from the models, and nothing else (no membership,
  URL or idempotency checks, no counters, no queueing). **pgbench** runs the same four statements
  (`-M prepared`, {pgbench.connections} clients, {pgbench.seconds:.0f} s). Lists: {heavy_list.connections}
  connections, `limit=20`. Login: one connection, then four, cycling over 200 members.
- **Profile:** py-spy ({profiled.samples:,} samples of request threads in the three workers) during
  a second create run; "share" is of all request-thread samples, a function counting with everything
  it calls.

## HTTP

{_table(["scenario", "conns", "requests", "errors", "p50 ms", "p95 ms", "p99 ms", "req/s"], _http_rows(results))}

## List statements on the database (median ms)

{
        _table(
            ["member", "tasks", "COUNT(*) total", "counters total", "OFFSET last page", "keyset last page"],
            [
                [
                    r.member,
                    f"{r.history:,}",
                    f"{r.count_ms:.3f}",
                    f"{r.counters_ms:.3f}",
                    f"{r.offset_ms:.2f}",
                    f"{r.keyset_ms:.3f}",
                ]
                for r in list_sql
            ],
        )
    }

## Sweep

{
        _table(
            ["run", "tasks failed", "seconds", "tasks/s", "statements", "statements per task"],
            [
                [
                    s.name,
                    f"{s.failed:,}",
                    f"{s.seconds:.2f}",
                    f"{s.per_second:,.0f}",
                    f"{s.statements:,}",
                    f"{s.statements / max(s.failed, 1):.3f}",
                ]
                for s in sweeps
            ],
        )
    }

## Where a create's time goes (py-spy)

{_table(["in", "share"], watched_rows)}

Functions the samples were in (self time):

{_table(["function", "share"], leaf_rows)}
{f"py-spy: {profiled.note}" if profiled.note else ""}
"""


def write(path: Path, generated: str) -> None:
    notes = ""
    if path.exists():
        previous = path.read_text()
        if NOTES_MARKER in previous:
            notes = previous.split(NOTES_MARKER, 1)[1]
    path.write_text(f"{generated}\n{NOTES_MARKER}\n{notes.lstrip(chr(10))}")
