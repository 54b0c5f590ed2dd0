from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from time import perf_counter
from typing import Any

from django.db import connection


@dataclass(frozen=True)
class Executed:
    sql: str
    params: Any
    seconds: float


@dataclass
class QueryRecorder:
    """Keeps every statement the ORM sends. An execute wrapper rather than CaptureQueriesContext,
    whose log is capped at 9,000 entries and a 1,000-task sweep sends more than that."""

    queries: list[Executed] = field(default_factory=list)

    def __call__(self, execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any) -> Any:
        start = perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.queries.append(Executed(sql=sql, params=params, seconds=perf_counter() - start))

    def selects_from(self, table: str) -> list[Executed]:
        return [q for q in self.queries if q.sql.lstrip().upper().startswith("SELECT") and f'FROM "{table}"' in q.sql]


@contextmanager
def recording() -> Iterator[QueryRecorder]:
    recorder = QueryRecorder()
    with connection.execute_wrapper(recorder):
        yield recorder
