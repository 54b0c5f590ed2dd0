"""What one create costs inside the process, in units that do not move with the machine's load:
Python function calls (cProfile's count), SQL statements and Redis round trips per request, plus the
CPU time per request for what it is worth on a shared machine.

    BENCH_DATABASE=bench_cost .venv/bin/python -m bench.create_cost [N]

N creates (default 300) by one member through Django's test client (the whole middleware stack,
DRF, the services, Celery's publish to Redis), after 30 to warm up, on a throw-away database
(bench/environment.py). Run it on two checkouts to compare them: the counts are the same from
run to run."""

from __future__ import annotations

import cProfile
import json
import pstats
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from bench.environment import bench_django

WARM_UP = 30


@contextmanager
def _redis_commands(counted: list[int]) -> Iterator[None]:
    """Counts what redis-py sends: one per command, one per pipeline (a round trip each)."""
    from redis.connection import AbstractConnection

    original = AbstractConnection.send_packed_command

    def send(self: AbstractConnection, command: Any, check_health: bool = True) -> None:
        counted[0] += 1
        original(self, command, check_health)

    AbstractConnection.send_packed_command = send  # type: ignore[method-assign]
    try:
        yield
    finally:
        AbstractConnection.send_packed_command = original  # type: ignore[method-assign]


def main(creates: int) -> None:
    with bench_django():
        from django.conf import settings
        from django.core.management import call_command
        from django.db import connection
        from django.test import Client
        from rest_framework_simplejwt.tokens import RefreshToken

        from accounts.tests.factories import make_member
        from bench.images import png_bytes
        from config.celery import app as celery_app
        from media.services import media_upload

        call_command("migrate", verbosity=0, interactive=False)
        settings.MEMBER_MAX_ACTIVE_TASKS = 10 * (creates + WARM_UP)
        member = make_member(quota=10 * (creates + WARM_UP))
        _, url, _ = media_upload(user_id=member.pk, data=png_bytes())
        client = Client(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(member).access_token}")
        body = json.dumps({"type": "basic_clean", "inputImageUrl": url})

        def create() -> None:
            response = client.post("/api/task/create", body, content_type="application/json")
            if response.status_code != 201:
                raise SystemExit(f"a create answered {response.status_code}: {response.content[:300]!r}")

        for _ in range(WARM_UP):
            create()
        began = time.process_time()
        for _ in range(creates):
            create()
        cpu_ms = (time.process_time() - began) / creates * 1000
        redis_sent = [0]
        statements: list[str] = []

        def record(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
            statements.append(sql)
            return execute(sql, params, many, context)

        with connection.execute_wrapper(record), _redis_commands(redis_sent):
            create()
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(creates):
            create()
        profiler.disable()
        calls = pstats.Stats(profiler).total_calls  # type: ignore[attr-defined]
        control = [s for s in statements if s.upper().startswith(("SAVEPOINT", "RELEASE"))]
        print(f"per create, over {creates}:")
        print(f"  Python function calls   {calls / creates:,.0f}")
        print(f"  SQL statements          {len(statements) - len(control)} (+ BEGIN/COMMIT, the health check)")
        print(f"  Redis round trips       {redis_sent[0]}")
        print(f"  CPU ms (load-dependent) {cpu_ms:.2f}")
        celery_app.control.purge()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 300)
