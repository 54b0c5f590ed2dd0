"""The floor of the create benchmark: a bare WSGI app with one psycopg connection per thread and
PyJWT, doing the create transaction and nothing else (no framework, no ORM)."""

from __future__ import annotations

import json
import os
import threading
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

import jwt
import psycopg

SECRET = os.environ["DJANGO_SECRET_KEY"]
DSN = os.environ["DATABASE_URL"]
STATEMENTS = json.loads(open(os.environ["BENCH_CREATE_SQL"]).read())  # noqa: SIM115
_local = threading.local()


def _connection() -> psycopg.Connection[Any]:
    conn = getattr(_local, "conn", None)
    if conn is None or conn.closed:
        conn = _local.conn = psycopg.connect(DSN)
    return conn


def _answer(start_response: Callable[..., Any], status: str, body: dict[str, Any]) -> Iterable[bytes]:
    data = json.dumps(body).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
    return [data]


def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    try:
        token = environ.get("HTTP_AUTHORIZATION", "").removeprefix("Bearer ")
        claims = jwt.decode(token, SECRET, algorithms=["HS256"])
    except jwt.PyJWTError:
        return _answer(start_response, "401 Unauthorized", {"error": "token"})
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = json.loads(environ["wsgi.input"].read(length))
    now = datetime.now(UTC)
    task_id = uuid.uuid4()
    params = {"user": int(claims["user_id"]), "task": task_id, "url": str(body["inputImageUrl"]), "now": now}
    conn = _connection()
    with conn.transaction(), conn.cursor() as cursor:
        cursor.execute(STATEMENTS["lock"], params)
        row = cursor.fetchone()
        if row is None or not row[1] or row[0] < 1:
            return _answer(start_response, "403 Forbidden", {"error": "quota"})
        cursor.execute(STATEMENTS["deduct"], params)
        params["balance"] = cursor.fetchone()[0]  # type: ignore[index]
        cursor.execute(STATEMENTS["task"], params)
        cursor.execute(STATEMENTS["ledger"], params)
    return _answer(
        start_response, "201 Created", {"id": str(task_id), "status": "pending", "createdAt": now.isoformat()}
    )
