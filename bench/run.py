"""The benchmark itself, run once Django is configured for the bench database."""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from time import perf_counter
from typing import Any

import requests
from django.core.cache import cache
from django.core.management import call_command
from django.test import Client

from bench import load, report
from bench.images import png_bytes
from bench.plans import probe
from bench.seed import PASSWORD, SeedSize, seed
from bench.server import WORKERS, Gunicorn
from bench.sweep import measure_sweep
from config.celery import app as celery_app

CONCURRENCY = 4
SEED = 20261127


@dataclass(frozen=True)
class Timings:
    migrate: float
    seed: float


def _login(base_url: str, username: str) -> requests.Session:
    session = requests.Session()
    answer = session.post(f"{base_url}/api/auth/login", json={"username": username, "password": PASSWORD}, timeout=30)
    answer.raise_for_status()
    session.headers["Authorization"] = f"Bearer {answer.json()['data']['token']}"
    return session


def _upload(session: requests.Session, base_url: str) -> str:
    answer = session.post(
        f"{base_url}/api/media/upload", files={"file": ("bench.png", png_bytes(), "image/png")}, timeout=30
    )
    answer.raise_for_status()
    url: str = answer.json()["data"]["url"]
    return url


def _scenarios(base_url: str, heavy_task_ids: list[str], upload_urls: list[str], logins: list[str]) -> list[Any]:
    def list_page(session: requests.Session, n: int) -> requests.Response:
        return session.get(f"{base_url}/api/task/list", params={"limit": 20}, timeout=30)

    def detail(rng: random.Random) -> load.Send:
        def send(session: requests.Session, n: int) -> requests.Response:
            return session.get(f"{base_url}/api/task/{rng.choice(heavy_task_ids)}", timeout=30)

        return send

    def create(upload_url: str) -> load.Send:
        def send(session: requests.Session, n: int) -> requests.Response:
            body = {"type": "basic_clean", "inputImageUrl": upload_url}
            return session.post(f"{base_url}/api/task/create", json=body, timeout=30)

        return send

    def login(username: str) -> load.Send:
        def send(session: requests.Session, n: int) -> requests.Response:
            body = {"username": username, "password": PASSWORD}
            return session.post(f"{base_url}/api/auth/login", json=body, timeout=30)

        return send

    return [
        load.Scenario(
            "GET /api/task/list?limit=20 (heavy user)", 200, 4000, 15, CONCURRENCY, 5, [list_page] * CONCURRENCY
        ),
        load.Scenario(
            "GET /api/task/{id} (heavy user)",
            200,
            4000,
            15,
            CONCURRENCY,
            5,
            [detail(random.Random(SEED + i)) for i in range(CONCURRENCY)],
        ),
        load.Scenario(
            "POST /api/task/create (basic_clean, uploaded URL)",
            201,
            2000,
            15,
            CONCURRENCY,
            3,
            [create(url) for url in upload_urls],
        ),
        load.Scenario("POST /api/auth/login", 200, 300, 15, CONCURRENCY, 1, [login(name) for name in logins]),
    ]


def run(*, root: Path, environment: dict[str, str]) -> int:
    began = perf_counter()
    call_command("migrate", verbosity=0, interactive=False)
    migrated = perf_counter()
    size = SeedSize()
    data = seed(size=size, rng=random.Random(SEED))
    timings = Timings(migrate=migrated - began, seed=perf_counter() - migrated)
    print(f"migrated in {timings.migrate:.1f}s, seeded {data.tasks:,} tasks in {timings.seed:.1f}s", flush=True)

    probes = probe(
        client=Client(),
        username=data.heavy.username,
        password=PASSWORD,
        task_id=str(data.heavy_task_ids[0]),
        vendor_task_id=data.processing_vendor_ids[0],
    )
    print("query plans recorded", flush=True)
    sweeps = measure_sweep()
    print(f"sweep measured over {len(sweeps)} runs", flush=True)

    thread_users = [u.username for u in data.others[:CONCURRENCY]]
    server = Gunicorn(root=root, environment=environment, log=Path(environment["DJANGO_VAR_DIR"]) / "gunicorn.log")
    try:
        server.wait_ready()
        heavy_sessions = [_login(server.base_url, data.heavy.username) for _ in range(CONCURRENCY)]
        user_sessions = [_login(server.base_url, name) for name in thread_users]
        upload_urls = [_upload(session, server.base_url) for session in user_sessions]
        plain_sessions = [requests.Session() for _ in range(CONCURRENCY)]
        scenarios = _scenarios(
            server.base_url,
            [str(pk) for pk in data.heavy_task_ids],
            upload_urls,
            [u.username for u in data.others[CONCURRENCY : 2 * CONCURRENCY]],
        )
        sessions = [heavy_sessions, heavy_sessions, user_sessions, plain_sessions]
        results = []
        for scenario, scenario_sessions in zip(scenarios, sessions, strict=True):
            result = load.run(scenario, scenario_sessions)
            print(f"{scenario.name}: {result.count} requests in {result.seconds:.1f}s", flush=True)
            results.append(result)
    finally:
        server.stop()

    purged = celery_app.control.purge()
    cache.clear()
    elapsed = perf_counter() - began

    facts = report.Facts(
        size=size,
        seeded=data,
        timings={"migrate": timings.migrate, "seed": timings.seed, "total": elapsed},
        workers=WORKERS,
        concurrency=CONCURRENCY,
        purged_messages=purged,
    )
    text = report.render(facts=facts, results=results, probes=probes, sweeps=sweeps)
    print(report.console(results=results, probes=probes, sweeps=sweeps))
    report.write(root / "BENCHMARKS.md", text)
    print(f"wrote BENCHMARKS.md ({elapsed:.0f}s in all)")
    failed = sum(r.errors for r in results)
    return 1 if failed else 0
