"""Tables for the console and for BENCHMARKS.md. The generated part of the file is rewritten on
every run; what follows NOTES_MARKER is written by people and kept."""

from __future__ import annotations

import math
import os
import platform
import statistics
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import django
import gunicorn
from django.db import connection
from django.utils import timezone

from bench.load import Result
from bench.memory import ProcessMemory
from bench.polling import PollingRun
from bench.profile import Profile
from bench.seed import Seeded, SeedSize
from bench.server import THREADS, WORKERS
from bench.sweep import SweepRun

WEB_TARGET_MB = 120
WORKER_TARGET_MB = 200
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
    *,
    facts: Facts,
    results: list[Result],
    sweeps: list[SweepRun],
    list_sql: list[ListSql],
    profiled: Profile,
    polled: PollingRun,
    web_memory: list[ProcessMemory],
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
  made through the media service, `basic_clean`, {product.seconds:.0f} s per app after 3 s of the same
  load that are not counted (every worker has served requests and opened its connections). The product is
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
{polling_section(polled)}
{memory_section(polled=polled, web=web_memory)}"""


def write(path: Path, generated: str) -> None:
    notes = ""
    if path.exists():
        previous = path.read_text()
        if NOTES_MARKER in previous:
            notes = previous.split(NOTES_MARKER, 1)[1]
    path.write_text(f"{generated}\n{NOTES_MARKER}\n{notes.lstrip(chr(10))}")


def _memory_rows(processes: list[ProcessMemory], target_mb: float) -> list[list[str]]:
    return [
        [
            p.role,
            str(p.pid),
            f"{p.started_mb:.1f}",
            f"{p.peak_mb:.1f}",
            f"{p.growth_mb:+.1f}",
            "yes" if p.peak_mb <= target_mb else "**no**",
        ]
        for p in processes
    ]


def polling_section(polled: PollingRun) -> str:
    calls = polled.calls_per_task or [0]
    gaps = sorted(polled.poll_gaps)
    steps = polled.steps
    paths = ", ".join(f"`{path}` {count:,}" for path, count in sorted(polled.calls_by_path.items()))
    unattributed = sum(polled.unattributed.values())
    statuses = ", ".join(f"{status} {count}" for status, count in sorted(polled.by_status.items()))
    met = "; ".join(f"{name}: {'yes' if ok else '**no**'}" for name, ok in polled.met.items())
    rows = [
        ["tasks succeeded", f"{polled.succeeded} of {polled.tasks} ({statuses})"],
        ["in flight at once (simulator's peak of queued + running jobs)", f"{polled.peak_in_flight}"],
        [
            f"RunningHub API calls per task, max / mean (budget {polled.run_time:.0f} / {polled.poll_interval} + 4 "
            f"= {polled.budget:.0f})",
            f"{max(calls)} / {statistics.mean(calls):.2f}",
        ],
        ["calls per task, distribution", ", ".join(f"{n}: {c}" for n, c in sorted(Counter(calls).items()))],
        [
            "result downloads from the CDN per task (not API calls)",
            f"{polled.cdn_downloads / max(polled.tasks, 1):.1f}",
        ],
        ["wall time, worker ready to the last task's completion", f"{polled.wall_seconds:.1f} s"],
        ["first submit to last submit (runs at the simulator)", f"{polled.submit_seconds:.1f} s"],
        [
            f"seconds between a task's polls, median / p95 / max (interval {polled.poll_interval} s)",
            f"{gaps[len(gaps) // 2]:.1f} / {gaps[int(len(gaps) * 0.95)]:.1f} / {gaps[-1]:.1f}" if gaps else "–",
        ],
        ["creating the tasks (task_create, before the worker starts)", f"{polled.create_seconds:.1f} s"],
        [
            f"worker steps; slot busy time / ({steps.slots} slots × {steps.window_seconds:.0f} s)",
            f"{steps.steps:,}; {steps.busy_seconds:.1f} s, **{steps.busy_fraction:.0%}**",
        ],
        ["step duration p50 / p99 / max", f"{steps.p50_ms:.0f} / {steps.p99_ms:.0f} / {steps.max_ms:.0f} ms"],
        [
            "steps that called time.sleep; seconds slept in steps",
            f"{steps.sleeping_steps}; {steps.slept_seconds:.2f} s",
        ],
        ["421 (queue full) answers", f"{polled.queue_full_answers}"],
    ]
    return f"""## Polling at scale

{_table(["measure", "value"], rows)}

Targets met: {met}.

- **Method:** `.venv/bin/python -m bench.polling` (also run by `make bench`). {polled.tasks} `model_pose12`
  tasks of {polled.tasks // 5} members (five each, quota granted by `quota_grant`), each input uploaded
  through `media_upload` and the task created by `task_create`, which queues its first step as a
  request does. The whole burst is ordered before the worker starts consuming, so all of it waits
  for the worker at once (ordered beside the worker, creation shares the two cores with it and the
  first jobs finish before the last are submitted); the wall time runs from the worker's ready
  signal. The
  RunningHub simulator (devtools/runninghub_sim) runs in the bench process on
  loopback: run time {polled.run_time:.0f} s per job, its concurrency limit {polled.max_concurrency},
  webhooks off (every outcome is learnt by polling). One Celery worker, Procfile's command at
  {steps.slots} prefork slots: `{" ".join(["celery", *polled.command[1:]])}`, with
  `RUNNINGHUB_MAX_CONCURRENCY={polled.max_concurrency}` (so every task gets a slot at once) and
  `RUNNINGHUB_POLL_INTERVAL={polled.poll_interval}`. No beat, no sweep.
- **Calls per task** are counted in the simulator: a wrapper around its API handler charges each call
  to the task it serves (an upload by its file name `<task id>.png`, a run by the upload it names, a
  poll by the RunningHub task id the run returned); {unattributed} calls could not be charged. By path:
  {paths}. The twelve result pictures each finished task downloads from the simulator's CDN are not
  API calls and are counted apart.
- **No slot sleeps:** bench/polling_probe.py, loaded into the worker with `--include`, times every
  step from Celery's `task_prerun` to `task_postrun` in the pool child and counts the time that
  child's thread spends in `time.sleep` during the step. A poll that waited for RunningHub would hold
  its slot for about a poll interval or more and show up in the maximum step time and the sleep
  count; a step that re-schedules itself with a countdown ends in milliseconds. The busy fraction is
  the sum of step times over the slots × the span from the first step's start to the last one's end.
- **Cost:** {polled.tasks} tasks × (1 upload + 1 run + about run time / poll interval polls + 12
  downloads) of work for the one worker, at least one run time long however few tasks; the wall time
  grows with the run time and, once the worker's slots are saturated, with the number of tasks.
  `BENCH_POLL_TASKS` changes the count.
"""


def memory_section(*, polled: PollingRun | None, web: list[ProcessMemory] | None) -> str:
    parts = ["## Memory", ""]
    if web:
        worst = max(p.peak_mb for p in web)
        parts += [
            f"Gunicorn workers serving the product's create load (target ≤ {WEB_TARGET_MB:.0f} MB each): "
            f"largest peak **{worst:.1f} MB**.",
            "",
            _table(
                ["process", "pid", "after start MB", "peak MB", "growth", "≤ target"], _memory_rows(web, WEB_TARGET_MB)
            ),
            "",
        ]
    if polled is not None:
        worker = polled.worker_memory
        worst = max(p.peak_mb for p in worker)
        parts += [
            f"The Celery worker during the polling run (target ≤ {WORKER_TARGET_MB:.0f} MB per process): "
            f"largest peak **{worst:.1f} MB**.",
            "",
            _table(
                ["process", "pid", "after start MB", "peak MB", "growth", "≤ target"],
                _memory_rows(worker, WORKER_TARGET_MB),
            ),
            "",
        ]
    parts += [
        "- **Method:** `VmHWM` (the kernel's high-water mark of the resident set) from `/proc/<pid>/status` of",
        "  each gunicorn worker at the end of the create load, and of the Celery worker's main process and",
        '  each prefork child at the end of the polling run; "after start" is `VmRSS` once the server answered',
        "  or the worker was ready, before any load. MB = 10^6 bytes. Resident pages shared with the",
        "  forking parent count in every process that maps them.",
    ]
    return "\n".join(parts) + "\n"
