"""Entry point. The environment is set before Django is imported anywhere, because the settings
module reads it once at import time."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import psycopg

DATABASE = "bench_photo"
SERVER_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
ENVIRONMENT = {
    "DJANGO_SETTINGS_MODULE": "bench.settings",
    "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{DATABASE}",
    "CACHE_URL": "redis://127.0.0.1:6379/3",
    "CELERY_BROKER_URL": "redis://127.0.0.1:6379/4",
    "THROTTLE_TASK_CREATE": "100000/min",
    "THROTTLE_LOGIN_IP": "100000/min",
    "THROTTLE_LOGIN_USER": "100000/min",
    "THROTTLE_UPLOAD": "100000/min",
    "LOG_LEVEL": "WARNING",
}


def _recreate_database() -> None:
    with psycopg.connect(SERVER_DSN, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {DATABASE}")


def _drop_database() -> None:
    with psycopg.connect(SERVER_DSN, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")


def main() -> int:
    root = Path(__file__).resolve().parent.parent
    os.chdir(root)
    with tempfile.TemporaryDirectory(prefix="bench-") as var_dir:
        # Uploads land in a throw-away directory instead of the developer's var/media.
        os.environ.update(ENVIRONMENT, DJANGO_VAR_DIR=var_dir)
        _recreate_database()
        try:
            import django

            django.setup()
            from bench.run import run

            return run(root=root, environment={**ENVIRONMENT, "DJANGO_VAR_DIR": var_dir})
        finally:
            from django.db import connections

            connections.close_all()
            _drop_database()


if __name__ == "__main__":
    sys.exit(main())
