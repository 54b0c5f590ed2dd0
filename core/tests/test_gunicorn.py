"""Long headers and request lines reach Django (and its envelope) through a real gunicorn started
with the project's gunicorn.conf.py on a loopback port."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from django.db import connection
from rest_framework_simplejwt.tokens import RefreshToken

from accounts.tests.factories import make_member
from core.tests.embedded import ROOT, free_port

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


@pytest.fixture
def gunicorn(tmp_path: Path) -> Iterator[str]:
    db = connection.settings_dict
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.test_settings",
        # The test database, where this test's user is committed.
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
    }
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = (tmp_path / "gunicorn.log").open("wb")
    # No -c: gunicorn reads ./gunicorn.conf.py by itself, as it does in production.
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--workers", "1", "--bind", f"127.0.0.1:{port}", "config.wsgi"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                requests.get(f"{base}/health", timeout=5)
                break
            except requests.RequestException:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise AssertionError((tmp_path / "gunicorn.log").read_text()) from None
                time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=15)
        log.close()


def assert_4002(response: requests.Response) -> None:
    assert response.status_code == 400, response.text[:300]
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.json()["error"]["code"] == 4002


def test_a_10000_character_idempotency_key_is_4002_from_django(gunicorn: str) -> None:
    member = make_member()
    token = RefreshToken.for_user(member).access_token
    response = requests.post(
        f"{gunicorn}/api/task/create",
        json={"type": "basic_clean", "inputImageUrl": "https://images.example.com/a.png"},
        headers={"Authorization": f"Bearer {token}", "Idempotency-Key": "k" * 10_000},
        timeout=10,
    )
    assert_4002(response)
    assert "Idempotency-Key" in response.json()["error"]["fields"]


def test_a_long_unknown_path_is_the_404_envelope(gunicorn: str) -> None:
    response = requests.get(f"{gunicorn}/api/{'x' * 6000}", timeout=10)
    assert response.status_code == 404
    assert response.json() == {"success": False, "error": {"code": 404, "message": "接口不存在"}}


def test_a_long_query_string_reaches_django(gunicorn: str) -> None:
    response = requests.get(f"{gunicorn}/api/task/list?status={'x' * 6000}", timeout=10)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == 1001


def test_a_worker_loads_what_requests_need_before_the_first_one_without_touching_the_network() -> None:
    """config/wsgi.py warms the worker (URL conf and views, PyJWT, Celery's transport) and connects
    to nothing: with the database and the broker unreachable, the application still loads."""
    code = (
        "import sys, config.wsgi; "
        "print(all(m in sys.modules for m in ('tasks.apis', 'media.apis', 'jwt.algorithms', 'kombu.transport.redis')))"
    )
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.test_settings",
        "DATABASE_URL": "postgres://nobody@127.0.0.1:1/none",
        "CELERY_BROKER_URL": "redis://127.0.0.1:1/0",
    }
    loaded = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.strip().splitlines()[-1] == "True"
