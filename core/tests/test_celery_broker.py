"""A Celery worker survives its Redis broker going away (config/broker.py): found by the fault drill
`broker_outage` (RELIABILITY.md), where the cpu worker died at the outage and every task queued
after it timed out. Real processes: a redis-server of the test's own, a worker as production runs it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from kombu import Connection

from config.celery import app

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait(check: Callable[[], bool], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


class Redis:
    def __init__(self, port: int) -> None:
        self.port = port
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        command = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        _wait(self._up, "redis-server")

    def _up(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return True
        except OSError:
            return False

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def redis_server() -> Iterator[Redis]:
    redis = Redis(_free_port())
    redis.start()
    yield redis
    redis.kill()


def test_a_worker_holding_messages_survives_a_broker_restart(redis_server: Redis, tmp_path: Path) -> None:
    url = f"redis://127.0.0.1:{redis_server.port}/0"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.test_settings", "CELERY_BROKER_URL": url}
    log_path = tmp_path / "worker.log"
    command = [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", "io", "-P", "threads", "-c", "2"]
    command += ["-n", "broker-restart@%h", "--without-mingle", "--without-gossip", "-l", "INFO"]
    with log_path.open("wb") as log:
        worker = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait(lambda: b"ready." in log_path.read_bytes(), "the worker")
        # A message the worker holds unacknowledged (a countdown waits inside the worker), as
        # every poll of a RunningHub job does.
        with Connection(url) as connection:
            app.send_task(
                "tasks.advance", args=[str(uuid.uuid4()), None], countdown=600, queue="io", connection=connection
            )
        _wait(lambda: b"received" in log_path.read_bytes(), "the worker to hold the message")
        redis_server.kill()
        _wait(lambda: b"Connection to broker lost" in log_path.read_bytes(), "the worker to notice")
        time.sleep(3)
        assert worker.poll() is None, log_path.read_text()[-3000:]
        redis_server.start()
        with Connection(url) as connection:
            app.send_task("tests.after_the_restart", queue="io", connection=connection)
        _wait(lambda: b"tests.after_the_restart" in log_path.read_bytes(), "a message after the restart", 60)
        assert b"Unrecoverable error" not in log_path.read_bytes()
    finally:
        worker.terminate()
        worker.wait(timeout=30)
