"""Celery on RabbitMQ end to end: a web process and a worker, both with CELERY_BROKER_URL=amqp://,
run a member's basic_clean to success. Skipped when no RabbitMQ listens on 127.0.0.1:5672 (the
in-process test app stays on Redis, so the system runs in subprocesses, driven over HTTP)."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from django.db import connection
from kombu import Connection

from accounts.tests.factories import PASSWORD, make_member
from core.tests.embedded import ROOT, free_port
from media.tests.images import product_photo

RABBITMQ_URL = "amqp://guest:guest@127.0.0.1:5672//"
QUEUES = ("cpu", "io")


def _rabbitmq_listening() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5672), timeout=1):
            return True
    except OSError:
        return False


pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not _rabbitmq_listening(), reason="no RabbitMQ server listens on 127.0.0.1:5672"),
]


def _purge() -> None:
    with Connection(RABBITMQ_URL, connect_timeout=3) as conn:
        for queue in QUEUES:
            channel: Any = conn.channel()
            try:
                channel.queue_purge(queue)
            except conn.channel_errors:
                pass  # not declared (yet): nothing to purge
            finally:
                with contextlib.suppress(Exception):  # the broker may have closed it already
                    channel.close()


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=15)


@pytest.fixture
def rabbitmq_system(transactional_db: None, tmp_path: Path) -> Iterator[str]:
    """A web process (runserver) and a worker on the cpu and io queues, both on RabbitMQ and the
    test's database; the web's base URL."""
    _purge()
    db = connection.settings_dict
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.test_settings",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "CELERY_BROKER_URL": RABBITMQ_URL,
        "DJANGO_VAR_DIR": str(tmp_path / "var"),
        "DJANGO_DEBUG": "false",
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost,testserver",
        "PUBLIC_BASE_URL": base,
    }
    commands = {
        "web": [sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"],
        "worker": [
            *(sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", ",".join(QUEUES)),
            *("--pool", "solo", "-n", f"rabbit-{port}@%h", "-l", "INFO"),
        ],
    }
    processes: list[tuple[subprocess.Popen[bytes], Any]] = []
    try:
        for name, command in commands.items():
            log = (tmp_path / f"{name}.log").open("wb")
            processes.append((subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT), log))
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(f"{base}/health", timeout=5).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            assert time.monotonic() < deadline, (tmp_path / "web.log").read_text(errors="replace")[-3000:]
            time.sleep(0.3)
        yield base
    finally:
        for process, log in processes:
            _stop(process)
            log.close()
        _purge()


def test_a_basic_clean_runs_to_success_on_rabbitmq(rabbitmq_system: str, tmp_path: Path) -> None:
    base = rabbitmq_system
    member = make_member()
    login = requests.post(
        f"{base}/api/auth/login", json={"username": member.username, "password": PASSWORD}, timeout=10
    )
    assert login.status_code == 200, login.text
    http = requests.Session()
    http.headers["Authorization"] = f"Bearer {login.json()['data']['token']}"

    upload = http.post(f"{base}/api/media/upload", files={"file": ("p.png", product_photo(), "image/png")}, timeout=10)
    assert upload.status_code == 201, upload.text
    created = http.post(
        f"{base}/api/task/create",
        json={"type": "basic_clean", "inputImageUrl": upload.json()["data"]["url"]},
        timeout=10,
    )
    assert created.status_code in (200, 201), created.text
    task_id = created.json()["data"]["id"]

    deadline = time.monotonic() + 60
    while True:
        task = http.get(f"{base}/api/task/{task_id}", timeout=10).json()["data"]
        if task["status"] in ("success", "failed"):
            break
        assert time.monotonic() < deadline, (task, (tmp_path / "worker.log").read_text(errors="replace")[-3000:])
        time.sleep(0.3)
    assert task["status"] == "success", (task, (tmp_path / "worker.log").read_text(errors="replace")[-3000:])
    assert len(task["resultUrls"]) == 3, task
    assert "transport:   amqp://guest:**@127.0.0.1:5672//" in (tmp_path / "worker.log").read_text(errors="replace")
