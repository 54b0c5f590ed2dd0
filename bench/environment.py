"""The bench's environment and its throw-away database, shared by `python -m bench` and the measures
that also run alone (`python -m bench.polling`). The environment is set before Django is imported
anywhere, because the settings module reads it once at import time.

BENCH_DATABASE (default bench_photo) names the database the run creates and drops; BENCH_REDIS_URL
(default redis://127.0.0.1:6379) the Redis whose databases 3 (cache) and 4 (broker) it uses. Two
runs on one machine stay apart with their own of each."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import psycopg

ROOT = Path(__file__).resolve().parent.parent
SERVER_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"


def database_name() -> str:
    name = os.environ.get("BENCH_DATABASE", "bench_photo")
    if not name.replace("_", "").isalnum():
        raise SystemExit(f"BENCH_DATABASE must be letters, digits and underscores, not {name!r}")
    return name


def _redis(db: int) -> str:
    return urlsplit(os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379"))._replace(path=f"/{db}").geturl()


def bench_environment() -> dict[str, str]:
    return {
        "DJANGO_SETTINGS_MODULE": "bench.settings",
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{database_name()}",
        "CACHE_URL": _redis(3),
        "CELERY_BROKER_URL": _redis(4),
        "THROTTLE_TASK_CREATE": "100000/min",
        "THROTTLE_LOGIN_IP": "100000/min",
        "THROTTLE_LOGIN_USER": "100000/min",
        "THROTTLE_UPLOAD": "100000/min",
        "LOG_LEVEL": "WARNING",
    }


def _drop_database() -> None:
    with psycopg.connect(SERVER_DSN, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {database_name()} WITH (FORCE)")


@contextmanager
def bench_django() -> Iterator[dict[str, str]]:
    """Django set up on a fresh, empty bench database (dropped again on the way out), with uploads
    in a throw-away directory instead of the developer's var/media. Yields the environment, for
    the servers and workers the bench starts."""
    os.chdir(ROOT)
    with tempfile.TemporaryDirectory(prefix="bench-") as var_dir:
        environment = {**bench_environment(), "DJANGO_VAR_DIR": var_dir}
        os.environ.update(environment)
        _drop_database()
        with psycopg.connect(SERVER_DSN, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {database_name()}")
        try:
            import django

            django.setup()
            yield environment
        finally:
            from django.db import connections

            connections.close_all()
            _drop_database()
