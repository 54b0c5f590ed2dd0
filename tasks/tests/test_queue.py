"""Two queues, two pools: basic_clean's image work on "cpu", RunningHub's submit/poll/collect (and
the sweep, cancels, housekeeping) on "io", so a long cut-out never holds up a RunningHub poll."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from celery import current_app
from django.db import connection
from rest_framework.test import APIClient

from core.tests.embedded import ROOT
from devtools.testing import SimulatorHandle
from media.tests.factories import upload_photo
from media.tests.images import product_photo
from tasks import queue
from tasks.models import Task, TaskStatus
from tasks.tests.conftest import wait_for
from tasks.tests.factories import post_create


def test_steps_are_routed_by_task_type_and_the_rest_goes_to_io() -> None:
    assert queue.advance_queue("basic_clean") == "cpu"
    assert queue.advance_queue("model_pose12") == "io"
    router = current_app.amqp.router
    for name in (queue.SWEEP, queue.CANCEL_VENDOR_TASK, "accounts.flush_expired_tokens"):
        assert router.route({}, name)["queue"].name == "io"


@pytest.fixture
def one_worker_per_queue(transactional_db: None, sim: SimulatorHandle, settings: Any, tmp_path: Path) -> Iterator[None]:
    """Two real worker processes as production runs them (the Procfile's commands): prefork on
    "cpu", threads on "io", both on the test database, broker, storage folder and simulator."""
    current_app.control.purge()
    db = connection.settings_dict
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.test_settings",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "DJANGO_VAR_DIR": str(Path(settings.MEDIA_ROOT).parent),
        "RUNNINGHUB_BASE_URL": sim.base_url,
        "RUNNINGHUB_API_KEY": sim.api_key,
        "RUNNINGHUB_POLL_INTERVAL": "1",
    }
    commands = {
        "cpu": ["-Q", "cpu", "-P", "prefork", "-c", "1"],
        "io": ["-Q", "io", "-P", "threads", "-c", "4"],
    }
    workers = []
    for name, options in commands.items():
        log = (tmp_path / f"worker-{name}.log").open("wb")
        command = [sys.executable, "-m", "celery", "-A", "config", "worker", *options, "-n", f"{name}@%h", "-l", "INFO"]
        workers.append((subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT), log))
    try:
        wait_for(lambda: len(current_app.control.ping(timeout=0.5) or []) == 2, timeout=60, interval=0.5)
        yield
    finally:
        for process, log in workers:
            process.kill()
            process.wait(timeout=30)
            log.close()
        current_app.control.purge()


@pytest.mark.django_db(transaction=True)
@pytest.mark.slow
def test_a_long_basic_clean_does_not_delay_a_pose12_poll(
    one_worker_per_queue: None, sim: SimulatorHandle, pose12_client: APIClient
) -> None:
    sim.configure(run_time=1.0)
    client = pose12_client
    # Three 40-megapixel photos keep the cpu worker busy for several seconds, queued first.
    big = upload_photo(client, product_photo(size=(7000, 5700)))
    cleans = [post_create(client, {"type": "basic_clean", "inputImageUrl": big}).json()["data"]["id"] for _ in range(3)]
    ordered = time.monotonic()
    pose = post_create(client, {"type": "model_pose12", "inputImageUrl": upload_photo(client)}).json()["data"]["id"]

    wait_for(lambda: Task.objects.filter(pk=pose, status=TaskStatus.SUCCESS).exists(), timeout=60, interval=0.1)
    pose_done = time.monotonic() - ordered
    unfinished_cleans = Task.objects.filter(pk__in=cleans).exclude(status=TaskStatus.SUCCESS).count()
    # Submit, at least one poll a second later, collect: a few seconds, while the cut-outs still run.
    assert pose_done < 8, pose_done
    assert unfinished_cleans >= 1
    wait_for(lambda: not Task.objects.filter(pk__in=cleans).exclude(status=TaskStatus.SUCCESS).exists(), timeout=120)
