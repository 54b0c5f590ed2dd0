"""Helpers every app's tests share: reading the error envelope, and racing real threads."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from django.db import connection

# PostgreSQL here allows 100 connections; the test holds some, so at most this many threads are
# inside the database at once (all of them still start together and race for the same rows).
MAX_CONNECTIONS = 50


def error_of(response: Any) -> tuple[int, int]:
    """(HTTP status, error code) of an error answer."""
    return response.status_code, response.json()["error"]["code"]


def race(*works: Callable[[], object]) -> list[object]:
    """Run each of `works` in its own thread, all released at once, each on its own database
    connection; returns what each returned, or the exception it raised, in the order given."""
    barrier = threading.Barrier(len(works))
    connections = threading.BoundedSemaphore(MAX_CONNECTIONS)
    results: list[object] = [None] * len(works)

    def run(index: int, work: Callable[[], object]) -> None:
        try:
            barrier.wait()
            with connections:
                try:
                    results[index] = work()
                finally:
                    connection.close()
        except Exception as exc:
            results[index] = exc

    threads = [threading.Thread(target=run, args=(i, w)) for i, w in enumerate(works)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results
