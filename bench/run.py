"""The benchmark itself, run once Django is configured for the bench database. Every measure runs
beside its baseline in the same invocation, and BENCHMARKS.md reports them as ratios."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from collections.abc import Callable
from functools import partial
from pathlib import Path
from time import perf_counter
from typing import Any

import requests
from django.conf import settings
from django.contrib.auth.hashers import check_password, make_password
from django.core.cache import cache
from django.core.management import call_command
from django.db import connection
from rest_framework_simplejwt.tokens import RefreshToken

from accounts.models import User
from bench import create_sql, load, memory, polling_tasks, profile, report
from bench.images import png_bytes
from bench.polling import run_polling
from bench.seed import PASSWORD, QUOTA_HEADROOM, SeedSize, seed
from bench.server import Gunicorn
from bench.sweep import row_by_row, set_based
from config.celery import app as celery_app
from media.services import media_upload
from quota.selectors import quota_mismatches
from tasks.counters import task_counter_mismatches
from tasks.models import Task

CREATE_MEMBERS = 1_000
CREATE_CONNECTIONS = 16
CREATE_SECONDS = 10
# Each app's workers first serve this long of the same load, not counted: a process's first
# requests also open its connections and load what it loads lazily, for every app alike.
CREATE_WARM_SECONDS = 3
LIST_CONNECTIONS = 4
LIST_SECONDS = 8
LOGIN_SECONDS = 8
PGBENCH_SECONDS = 10


def _median_ms(work: Callable[[], object], repeat: int = 15) -> float:
    work()
    times = []
    for _ in range(repeat):
        began = perf_counter()
        work()
        times.append(perf_counter() - began)
    return statistics.median(times) * 1000


def _sql(sql: str, params: list[Any]) -> Callable[[], object]:
    def run() -> object:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall()

    return run


def _list_sql(members: dict[str, int]) -> list[report.ListSql]:
    """The list's `total` as it was (COUNT over the member's tasks) against the counters' sum, and
    a deep page by OFFSET against the keyset (`after`), straight on the database."""
    tasks, counters = Task._meta.db_table, "tasks_taskcounter"
    rows = []
    for label, user_id in members.items():
        history = Task.objects.filter(user_id=user_id).count()
        count_ms = _median_ms(_sql(f"SELECT COUNT(*) FROM {tasks} WHERE user_id = %s", [user_id]))
        counters_ms = _median_ms(_sql(f"SELECT SUM(n) FROM {counters} WHERE user_id = %s", [user_id]))
        deep = max(history - 20, 0)
        page = f"SELECT id FROM {tasks} WHERE user_id = %s"
        order = "ORDER BY created_at DESC, id DESC LIMIT 20"
        offset_ms = _median_ms(_sql(f"{page} {order} OFFSET %s", [user_id, deep]), repeat=5)
        cursor = (
            Task.objects.filter(user_id=user_id).order_by("-created_at", "-id").values_list("created_at", "id")[deep]
        )
        keyset_ms = _median_ms(
            _sql(
                f"{page} AND (created_at, id) < (%s, %s) {order}",
                [user_id, *cursor],
            )
        )
        rows.append(report.ListSql(label, history, count_ms, counters_ms, offset_ms, keyset_ms))
    return rows


def _tokens(user_ids: list[int]) -> dict[int, str]:
    users = User.objects.in_bulk(user_ids)
    return {pk: str(RefreshToken.for_user(users[pk]).access_token) for pk in user_ids}


def _create_lines(tokens: dict[int, str]) -> list[tuple[str, str]]:
    image = png_bytes()
    lines = []
    for user_id, token in tokens.items():
        _, url, _ = media_upload(user_id=user_id, data=image)
        lines.append((token, json.dumps({"type": "basic_clean", "inputImageUrl": url})))
    return lines


def _pgbench(folder: Path, *, first_user: int, members: int) -> load.Result:
    script = create_sql.pgbench_script(folder / "create.sql", first_user=first_user, members=members)
    database = settings.DATABASES["default"]
    finished = subprocess.run(
        [
            "pgbench",
            "-n",
            "-M",
            "prepared",
            "-c",
            str(CREATE_CONNECTIONS),
            "-j",
            "2",
            "-T",
            str(PGBENCH_SECONDS),
            "-f",
            str(script),
            "-h",
            database["HOST"],
            "-p",
            str(database["PORT"]),
            "-U",
            database["USER"],
            "-r",
            database["NAME"],
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=PGBENCH_SECONDS + 60,
    )
    out = finished.stdout
    tps = float(out.split("tps = ", 1)[1].split()[0])
    latency = float(out.split("latency average = ", 1)[1].split()[0])
    transactions = int(out.split("number of transactions actually processed: ", 1)[1].split()[0])
    failed = int(out.split("number of failed transactions: ", 1)[1].split()[0]) if "failed transactions" in out else 0
    return load.Result(
        name="pgbench: the create transaction's SQL",
        connections=CREATE_CONNECTIONS,
        requests=transactions,
        seconds=transactions / tps,
        non2xx=failed,
        socket_errors=0,
        p50_ms=latency,
        p95_ms=float("nan"),
        p99_ms=float("nan"),
    )


def _hash_ms() -> dict[str, float]:
    """One password check with each hasher, in this process (login's main cost)."""
    found = {}
    for hasher in ("argon2", "pbkdf2_sha256"):
        encoded = make_password(PASSWORD, hasher=hasher)
        found[hasher] = _median_ms(partial(check_password, PASSWORD, encoded), repeat=9)
    return found


def _create_load(server: Gunicorn, name: str, *, lines: list[tuple[str, str]], folder: Path) -> load.Result:
    """The create load every app gets: CREATE_CONNECTIONS connections for CREATE_SECONDS, after
    CREATE_WARM_SECONDS of it that are not counted."""
    for label, seconds in ((f"{name}, warm-up", CREATE_WARM_SECONDS), (name, CREATE_SECONDS)):
        result = load.run(
            label,
            url=f"{server.base_url}/api/task/create",
            method="POST",
            lines=lines,
            folder=folder,
            connections=CREATE_CONNECTIONS,
            seconds=seconds,
        )
    print(f"{name}: {result}", flush=True)
    return result


def web_create_memory(*, root: Path, environment: dict[str, str], folder: Path) -> list[memory.ProcessMemory]:
    """The gunicorn workers' memory under the create load alone, for `python -m bench.polling --web`:
    the same server, connections and duration as in `run`, over members made for it."""
    owners = polling_tasks.members(CREATE_MEMBERS // 5, quota=QUOTA_HEADROOM, prefix="web")
    lines = _create_lines(_tokens([user.pk for user in owners]))
    server = Gunicorn(root=root, environment=environment, log=folder / "web-memory.log")
    try:
        server.wait_ready(path="/api/task/create", ok=(401, 405))
        pids = dict.fromkeys(server.worker_pids(), "gunicorn worker")
        started = memory.started(pids)
        _create_load(server, "POST /api/task/create (product)", lines=lines, folder=folder)
        return memory.peaks(pids, started)
    finally:
        server.stop()


def run(*, root: Path, environment: dict[str, str]) -> int:
    began = perf_counter()
    folder = Path(environment["DJANGO_VAR_DIR"])
    call_command("migrate", verbosity=0, interactive=False)
    size = SeedSize.from_environment()
    seeded = seed(size=size)
    seed_seconds = perf_counter() - began
    print(f"seeded {seeded.tasks:,} tasks, {seeded.ledger_rows:,} ledger rows in {seed_seconds:.0f}s", flush=True)

    sweeps = [row_by_row(size.baseline_stale), set_based()]
    mismatches = {"quota": len(quota_mismatches()), "counters": len(task_counter_mismatches())}
    print(f"sweeps: {sweeps}; mismatches after them: {mismatches}", flush=True)

    light_ids = list(range(seeded.light_id, seeded.light_id + min(CREATE_MEMBERS, size.members - 2)))
    members = {"heavy": seeded.heavy_id, "medium": seeded.medium_id, "light": seeded.light_id}
    list_sql = _list_sql(members)
    print("list statements timed", flush=True)

    tokens = _tokens([*members.values(), *light_ids])
    create_lines = _create_lines({pk: tokens[pk] for pk in light_ids})
    statements_file = create_sql.write_for_apps(folder / "create-statements.json")
    app_environment = {**environment, "BENCH_CREATE_SQL": str(statements_file)}
    results: list[load.Result] = []

    def serve(app: str, label: str) -> Gunicorn:
        server = Gunicorn(root=root, environment=app_environment, log=folder / f"{label}.log", app=app)
        try:
            server.wait_ready(path="/api/task/create", ok=(401, 405))
        except BaseException:
            server.stop()  # never leave a server behind when it did not come up
            raise
        return server

    def create_load(server: Gunicorn, name: str) -> load.Result:
        token, body = create_lines[-1]
        smoke = requests.post(
            f"{server.base_url}/api/task/create",
            data=body,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            timeout=30,
        )
        if smoke.status_code != 201:
            raise RuntimeError(f"{name}: a create answered {smoke.status_code}: {smoke.text[:500]}")
        return _create_load(server, name, lines=create_lines, folder=folder)

    product = serve("config.wsgi:application", "product")
    try:
        web_pids = dict.fromkeys(product.worker_pids(), "gunicorn worker")
        web_started = memory.started(web_pids)
        results.append(create_load(product, "POST /api/task/create (product)"))
        web_memory = memory.peaks(web_pids, web_started)
        print(f"gunicorn workers' memory: {web_memory}", flush=True)
        # Profiled right after, before the logins: a login burst leaves Argon2 work queued behind it.
        profiled = profile.record(
            pids=product.worker_pids(),
            folder=folder,
            load=lambda: create_load(product, "POST /api/task/create (product, under py-spy)"),
        )
        for label, user_id in members.items():
            page = load.run(
                f"GET /api/task/list?limit=20 ({label} member)",
                url=f"{product.base_url}/api/task/list?limit=20",
                method="GET",
                lines=[(tokens[user_id], "")],
                folder=folder,
                connections=LIST_CONNECTIONS,
                seconds=LIST_SECONDS,
            )
            print(page, flush=True)
            results.append(page)
        deep = max(list_sql[0].history - 20, 0)
        cursor = (
            Task.objects.filter(user_id=seeded.heavy_id).order_by("-created_at", "-id").values_list("id", flat=True)
        )
        # The keyset page first: the slow offset requests still running when wrk stops would
        # otherwise share the cores with the next scenario's first seconds.
        for name, query in (
            ("after=<id>", f"after={cursor[deep - 1]}"),
            (f"offset={deep}", f"offset={deep}"),
        ):
            results.append(
                load.run(
                    f"GET /api/task/list?limit=20&{name} (heavy member, last page)",
                    url=f"{product.base_url}/api/task/list?limit=20&{query}",
                    method="GET",
                    lines=[(tokens[seeded.heavy_id], "")],
                    folder=folder,
                    connections=LIST_CONNECTIONS,
                    seconds=LIST_SECONDS,
                )
            )
            print(results[-1], flush=True)
        login_lines = [
            ("", json.dumps({"username": f"bench_{n:06d}", "password": PASSWORD}))
            for n in range(3, min(203, size.members + 1))
        ]
        for connections in (1, 4):
            results.append(
                load.run(
                    f"POST /api/auth/login ({connections} at once)",
                    url=f"{product.base_url}/api/auth/login",
                    method="POST",
                    lines=login_lines,
                    folder=folder,
                    connections=connections,
                    seconds=LOGIN_SECONDS,
                )
            )
            print(results[-1], flush=True)
    finally:
        product.stop()
    for app, label in (("bench.peers.drf_wsgi:application", "drf-peer"), ("bench.peers.floor:application", "floor")):
        server = serve(app, label)
        try:
            results.append(create_load(server, f"POST /api/task/create ({label})"))
        finally:
            server.stop()
    results.append(_pgbench(folder, first_user=seeded.light_id, members=len(light_ids)))
    print(results[-1], flush=True)

    polled = run_polling(root=root, environment=environment, folder=folder)
    print(f"polling: {polled.met}", flush=True)

    purged = celery_app.control.purge()
    cache.clear()
    facts = report.Facts(
        size=size,
        seeded=seeded,
        seed_seconds=seed_seconds,
        total_seconds=perf_counter() - began,
        purged_messages=purged,
        mismatches=mismatches,
        hash_ms=_hash_ms(),
    )
    text = report.render(
        facts=facts,
        results=results,
        sweeps=sweeps,
        list_sql=list_sql,
        profiled=profiled,
        polled=polled,
        web_memory=web_memory,
    )
    report.write(root / "BENCHMARKS.md", text)
    print(text)
    # The basic_clean engine has its own section of BENCHMARKS.md, kept by bench.engine itself.
    subprocess.run([sys.executable, "-m", "bench.engine", "--write"], cwd=root, check=True, timeout=600)
    print(f"wrote BENCHMARKS.md ({perf_counter() - began:.0f}s in all)")
    return 1 if any(r.errors for r in results) or any(mismatches.values()) or not all(polled.met.values()) else 0
