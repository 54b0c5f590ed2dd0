"""model_pose12 end to end: the API, a real Celery worker, the RunningHub simulator over HTTP."""

from __future__ import annotations

import io
import time
import zipfile
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from PIL import Image
from rest_framework.test import APIClient

from accounts.models import User
from devtools.testing import SimulatorHandle
from media.storage import get_storage
from media.tests.factories import upload_photo
from quota.models import LedgerKind, QuotaLedger
from quota.selectors import quota_mismatches
from tasks.models import Task, TaskEvent
from tasks.sweep import tasks_sweep
from tasks.tests.conftest import task_status, wait_for
from tasks.tests.factories import post_create

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

Client = Callable[[User], APIClient]


@pytest.fixture
def polled(sim: SimulatorHandle, settings: Any) -> SimulatorHandle:
    """The simulator finishing a job in half a second and calling no webhook; the worker polls
    it every second."""
    sim.configure(run_time=0.5, webhook=False)
    settings.RUNNINGHUB_POLL_INTERVAL = 1
    return sim


@pytest.fixture
def order(
    polled: SimulatorHandle, member: User, client_for: Client, prompt_templates: None
) -> Callable[..., tuple[APIClient, str]]:
    """Upload a photo as `member` and order model_pose12; returns (client, task id)."""

    def make(**params: str) -> tuple[APIClient, str]:
        client = client_for(member)
        body = {"type": "model_pose12", "inputImageUrl": upload_photo(client), "params": params}
        created = post_create(client, body)
        assert created.status_code == 201, created.content
        return client, created.json()["data"]["id"]

    return make


def refunds(task_id: str) -> int:
    return QuotaLedger.objects.filter(task_id=task_id, kind=LedgerKind.REFUND).count()


def assert_twelve_stored_results(client: APIClient, task: dict[str, Any], sim: SimulatorHandle) -> None:
    assert len(task["resultUrls"]) == 12
    storage = get_storage()
    for url in task["resultUrls"]:
        assert not url.startswith(sim.base_url), "results must live in our storage, not at RunningHub"
        key = storage.key_for_url(url)
        assert key is not None and key.startswith("results/")
        Image.open(io.BytesIO(storage.read(key=key))).verify()


def test_success_stores_twelve_results(worker: None, sim: SimulatorHandle, order: Any, member: User) -> None:
    client, task_id = order(scene="studio", category="coat")
    task = wait_for(task_status(client, task_id, "success", "failed"))
    assert task["status"] == "success", task
    assert_twelve_stored_results(client, task, sim)
    state = sim.state()
    assert len(state["tasks"]) == 1
    prompt = state["tasks"][0]["prompt"]
    assert "studio" in prompt and "coat" in prompt
    assert Task.objects.get(pk=task_id).vendor_task_id == state["tasks"][0]["taskId"]
    member.refresh_from_db()
    assert member.quota_remaining == 9 and refunds(task_id) == 0
    assert quota_mismatches() == []
    stages = list(TaskEvent.objects.filter(task_id=task_id).values_list("stage", flat=True))
    assert stages[0] == "submitted" and stages[-3:] == ["collecting", "auditing", "done"], stages
    assert (task["stage"], task["queuePosition"]) == ("done", None)

    archive = client.get(f"/api/task/{task_id}/archive")
    assert archive.status_code == 200 and archive["Content-Type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(b"".join(archive.streaming_content))) as zipped:
        names = zipped.namelist()
        assert names == [f"{task_id.replace('-', '')[:8]}-{n:02d}.png" for n in range(1, 13)]
        Image.open(io.BytesIO(zipped.read(names[0]))).verify()


def test_fewer_images_than_expected_fail_after_one_more_look(
    worker: None, sim: SimulatorHandle, order: Any, member: User
) -> None:
    sim.configure(output_count=11)
    client, task_id = order()
    task = wait_for(task_status(client, task_id, "success", "failed"))
    assert (task["status"], task["failureCode"], task["quotaRefunded"]) == ("failed", "incomplete_results", 1)
    assert "不完整" in task["errorMessage"]
    finished_polls = sim.state()["calls"]["/task/openapi/outputs"]
    assert finished_polls >= 2, "RunningHub was asked once more before the task failed"
    assert client.get(f"/api/task/{task_id}/archive").json()["error"]["code"] == 4005
    member.refresh_from_db()
    assert member.quota_remaining == 10 and quota_mismatches() == []


def test_vendor_failure_fails_with_one_refund(worker: None, sim: SimulatorHandle, order: Any, member: User) -> None:
    sim.configure(fail=True)
    client, task_id = order()
    task = wait_for(task_status(client, task_id, "success", "failed"))
    assert task["status"] == "failed"
    assert task["errorMessage"].startswith("生成失败")
    assert "Traceback" not in task["errorMessage"]
    assert task["quotaRefunded"] == 1 and refunds(task_id) == 1
    member.refresh_from_db()
    assert member.quota_remaining == 10


def test_queue_full_waits_then_succeeds(worker: None, sim: SimulatorHandle, order: Any) -> None:
    sim.configure(queue_full=2)
    client, task_id = order()
    task = wait_for(task_status(client, task_id, "success", "failed"), timeout=45)
    assert task["status"] == "success", task
    calls = sim.state()["calls"]
    assert calls["/task/openapi/ai-app/run"] == 3
    assert calls["/task/openapi/upload"] == 1, "the photo is uploaded once, however long the wait"
    assert refunds(task_id) == 0


def test_bursts_of_5xx_are_survived(
    worker: None, sim: SimulatorHandle, order: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Same back-off, shorter cap: five failures in a row then take seconds, not half a minute.
    monkeypatch.setattr("tasks.processing.MAX_BACKOFF_SECONDS", 2)
    client, task_id = order()
    wait_for(task_status(client, task_id, "processing"))
    sim.configure(http_5xx=5)
    task = wait_for(task_status(client, task_id, "success", "failed"), timeout=60)
    assert task["status"] == "success", task
    assert_twelve_stored_results(client, task, sim)


def test_never_finishing_job_times_out_is_cancelled_and_refunded(
    worker: None, sim: SimulatorHandle, order: Any, member: User, settings: Any
) -> None:
    sim.configure(never_finish=True)
    client, task_id = order()
    wait_for(task_status(client, task_id, "processing"))
    settings.TASK_PROCESSING_TIMEOUT = 1
    vendor_id = Task.objects.get(pk=task_id).vendor_task_id
    wait_for(lambda: tasks_sweep().failed_processing == 1, timeout=10)
    task = client.get(f"/api/task/{task_id}").json()["data"]
    assert (task["status"], task["errorMessage"], task["quotaRefunded"]) == ("failed", "处理超时", 1)
    wait_for(lambda: vendor_id in sim.state()["cancelled"])
    assert tasks_sweep().failed == 0
    member.refresh_from_db()
    assert member.quota_remaining == 10 and refunds(task_id) == 1


def test_queue_full_forever_hits_the_pending_timeout(
    worker: None, sim: SimulatorHandle, order: Any, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Back-offs of at most two seconds: a worker that kept resubmitting would show in a short window.
    monkeypatch.setattr("tasks.processing.MAX_BACKOFF_SECONDS", 2)
    sim.configure(queue_full=1000)
    client, task_id = order()
    run = "/task/openapi/ai-app/run"
    wait_for(lambda: sim.state()["calls"].get(run, 0) >= 2, timeout=20)

    def between_attempts() -> Any:
        """The retry's due time once the worker let go of the task and the retry is > 0.5 s away."""
        task = Task.objects.filter(pk=task_id, lease_until__isnull=True).values("next_attempt_at").first()
        due = task and task["next_attempt_at"]
        return due if due and (due - timezone.now()).total_seconds() > 0.5 else None

    retry_due = wait_for(between_attempts, timeout=20, interval=0.05)
    calls = sim.state()["calls"][run]
    settings.TASK_PENDING_TIMEOUT = 1
    assert tasks_sweep().failed_pending == 1
    task = client.get(f"/api/task/{task_id}").json()["data"]
    assert (task["status"], task["failureCode"]) == ("failed", "timeout")
    assert task["errorMessage"].startswith("任务超时")
    # The queued retry comes due, and a resubmitting worker would come back twice more after it.
    window_end = retry_due + timedelta(seconds=2 * 2 + 1)
    while timezone.now() < window_end:
        assert sim.state()["calls"][run] == calls, "no submission once the task failed"
        time.sleep(0.2)
    assert refunds(task_id) == 1


@pytest.fixture
def webhook_first(polled: SimulatorHandle, live_server: Any, settings: Any) -> SimulatorHandle:
    """Webhooks to the live server; the poller waits a minute, so the webhook always comes first."""
    settings.PUBLIC_BASE_URL = live_server.url
    settings.RUNNINGHUB_POLL_INTERVAL = 60
    polled.configure(webhook=True)
    return polled


def test_webhook_before_the_poller_gives_one_success(worker: None, webhook_first: SimulatorHandle, order: Any) -> None:
    client, task_id = order()
    task = wait_for(task_status(client, task_id, "success", "failed"), timeout=30)
    assert task["status"] == "success", task
    state = webhook_first.state()
    assert state["webhooks"] and state["webhooks"][0]["status"] == 200
    assert state["calls"]["/cdn"] == 12, "the results were downloaded once"
    assert state["calls"]["/task/openapi/outputs"] == 1


def test_forged_webhook_changes_nothing(
    worker: None, sim: SimulatorHandle, order: Any, api: APIClient, settings: Any
) -> None:
    sim.configure(never_finish=True)
    settings.RUNNINGHUB_POLL_INTERVAL = 60  # the poller stays away: every /outputs call below is the webhook's
    client, task_id = order()
    wait_for(task_status(client, task_id, "processing"))
    vendor_id = Task.objects.get(pk=task_id).vendor_task_id
    outputs = "/task/openapi/outputs"
    asked = sim.state()["calls"].get(outputs, 0)
    forged = {"taskId": vendor_id, "eventData": '{"code": 0, "data": [{"fileUrl": "http://127.0.0.1:1/x.png"}]}'}
    hook = "/api/webhooks/runninghub"
    assert api.post(f"{hook}?token=guess", forged, format="json").status_code == 403
    assert api.post(hook, forged, format="json").status_code == 403
    assert (
        api.post(f"{hook}?token={settings.RUNNINGHUB_WEBHOOK_SECRET}", "nope", content_type="application/json").json()[
            "error"
        ]["code"]
        == 4002
    )
    assert sim.state()["calls"].get(outputs, 0) == asked, "refused webhooks wake nothing"
    accepted = api.post(f"{hook}?token={settings.RUNNINGHUB_WEBHOOK_SECRET}", forged, format="json")
    assert accepted.status_code == 200
    # The worker took the webhook as a hint only: it asked RunningHub itself, heard "still running"
    # and let the task go until the next poll.
    wait_for(lambda: sim.state()["calls"].get(outputs, 0) == asked + 1, timeout=20, interval=0.05)
    wait_for(lambda: Task.objects.filter(pk=task_id, lease_until__isnull=True).exists(), timeout=20, interval=0.05)
    task = client.get(f"/api/task/{task_id}").json()["data"]
    assert (task["status"], task["resultUrls"], task["errorMessage"]) == ("processing", [], None)
    assert sim.state()["calls"].get("/cdn", 0) == 0 and sim.state()["calls"][outputs] == asked + 1
