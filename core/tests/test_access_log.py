"""gunicorn's access lines (gunicorn.conf.py): one JSON object per request, with the request id
Django answered with and the path without its query string."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import requests

from core.tests.test_gunicorn import gunicorn  # noqa: F401 (the fixture: a real gunicorn on loopback)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def test_access_lines_are_json_with_the_request_id_and_no_query(gunicorn: str, tmp_path: Path) -> None:  # noqa: F811
    answer = requests.get(f"{gunicorn}/health?token=query-secret-3", headers={"X-Request-ID": "edge-9"}, timeout=10)
    assert answer.status_code == 200 and answer.headers["X-Request-ID"] == "edge-9"
    log = tmp_path / "gunicorn.log"
    deadline = time.monotonic() + 10
    while '"http_access"' not in log.read_text() and time.monotonic() < deadline:
        time.sleep(0.2)
    access = [json.loads(line) for line in log.read_text().splitlines() if '"http_access"' in line]
    (line,) = [a for a in access if a["request_id"] == "edge-9"]
    assert line | {"method": "GET", "path": "/health", "status": 200} == line
    assert "query-secret-3" not in log.read_text()
