"""What a worker does with a task (tasks/processing.py), one step at a time as the queued message
would run it: RunningHub is the simulator and COS the local COS server, both over HTTP; the broker
records what is queued."""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import User
from aimodel.models import PromptTemplate
from devtools.cos_testing import RunningCos
from devtools.testing import SimulatorHandle
from media.storage import get_storage
from media.tests.factories import upload_photo
from media.tests.images import product_photo
from quota.models import LedgerKind, QuotaLedger
from quota.selectors import quota_mismatches
from tasks.actions import task_cancel
from tasks.creation import task_create
from tasks.models import FailureCode, Task, TaskEvent, TaskStatus, TaskType
from tasks.processing import MAX_TRANSIENT_ERRORS, QUEUE_FULL_BACKOFF_STEPS, task_advance, task_processing_timed_out
from tasks.queue import CANCEL_VENDOR_TASK
from tasks.sweep import tasks_sweep
from tasks.tests.conftest import wait_for
from tasks.tests.factories import INPUT_URL, Broker, broker, make_stale_tasks, make_task, public_dns

pytestmark = pytest.mark.django_db

Client = Callable[[User], APIClient]


def results_in(cos: RunningCos) -> list[str]:
    return [key for key in cos.keys() if key.startswith("results/")]  # noqa: SIM118 (a server handle, not a dict)


def stored_results() -> list[Path]:
    root = Path(django_settings.MEDIA_ROOT) / "results"
    return [path for path in root.rglob("*") if path.is_file()] if root.exists() else []


def refunds(task: Task) -> int:
    return QuotaLedger.objects.filter(task_id=task.pk, kind=LedgerKind.REFUND).count()


def order(user: User, task_type: TaskType, input_image_url: str) -> Task:
    with broker():
        return task_create(user=user, task_type=task_type, input_image_url=input_image_url, params={}).task


def step_is_retried(task: Task, caplog: pytest.LogCaptureFixture, reason: str) -> None:
    """One step that fails for a while: the error counted, the lease released, the next attempt
    queued."""
    with broker() as queued, caplog.at_level(logging.INFO, logger="tasks.processing"):
        task_advance(task_id=task.pk, token=None)
    assert f"will retry: {reason}" in caplog.text
    task.refresh_from_db()
    assert (task.status, task.transient_errors, task.lease_until) == (TaskStatus.PROCESSING, 1, None)
    assert queued.task_ids() == [str(task.pk)], "the next attempt is scheduled"


def next_attempt(task: Task) -> None:
    """The step run by the message the retry queued."""
    with broker():
        task_advance(task_id=task.pk, token=task.next_attempt_at)
    task.refresh_from_db()


def test_worker_fails_a_pending_task_past_its_timeout_instead_of_starting_it() -> None:
    [task] = make_stale_tasks(1)
    task_advance(task_id=task.pk, token=None)
    task.refresh_from_db()
    assert (task.status, task.error_message, task.started_at) == (TaskStatus.FAILED, "任务超时(10分钟未处理)", None)
    assert task.failure_code == FailureCode.TIMEOUT
    assert refunds(task) == 1


def test_a_long_queue_full_wait_leaves_the_error_budget_intact(
    sim: SimulatorHandle, member: User, uploaded: str, prompt_templates: None
) -> None:
    """After many 421s a task still survives a run of transient errors before it fails."""
    task = order(member, TaskType.MODEL_POSE12, uploaded)
    sim.configure(queue_full=20)
    with broker():
        for _ in range(20):
            task_advance(task_id=task.pk, token=None)
        sim.configure(http_5xx=MAX_TRANSIENT_ERRORS)
        for _ in range(MAX_TRANSIENT_ERRORS - 4):
            task_advance(task_id=task.pk, token=None)
        assert Task.objects.get(pk=task.pk).status == TaskStatus.PENDING
        for _ in range(4):
            task_advance(task_id=task.pk, token=None)
    task.refresh_from_db()
    assert task.status == TaskStatus.FAILED and task.error_message.startswith("处理失败")
    assert task.failure_code == FailureCode.RETRIES_EXHAUSTED
    assert refunds(task) == 1
    calls = sim.state()["calls"]
    assert calls["/task/openapi/upload"] == 1, "the photo is uploaded once, however long the wait"
    assert calls["/task/openapi/ai-app/run"] == 20 + MAX_TRANSIENT_ERRORS - QUEUE_FULL_BACKOFF_STEPS, (
        "the 421s raised the error count only to its cap, and no call was made once the task failed"
    )


def test_a_storage_outage_is_retried_not_left_stuck(
    cos_storage: RunningCos,
    sim: SimulatorHandle,
    member: User,
    prompt_templates: None,
    client_for: Client,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """COS answers 503 while the finished job's results are stored: the step is retried later
    (the lease released, the next attempt queued) and succeeds once COS is back."""
    sim.configure(run_time=0, webhook=False)
    task = order(member, TaskType.MODEL_POSE12, upload_photo(client_for(member)))
    with broker():
        task_advance(task_id=task.pk, token=None)
    assert Task.objects.get(pk=task.pk).status == TaskStatus.PROCESSING

    cos_storage.set_fault("error")
    step_is_retried(task, caplog, "保存结果失败")
    assert not results_in(cos_storage)

    cos_storage.set_fault("none")
    next_attempt(task)
    assert task.status == TaskStatus.SUCCESS and len(task.result_urls) == 12
    assert len(results_in(cos_storage)) == 12
    assert refunds(task) == 0


def test_results_are_deleted_while_the_audit_cannot_be_reached(
    cos_storage: RunningCos, member: User, client_for: Client, settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """Stored results the audit has not passed are not left behind: they are deleted, the step is
    retried, and a later attempt stores, audits and hands them out."""
    settings.AUDIT_BACKEND = "tencent_ci"
    task = order(member, TaskType.BASIC_CLEAN, upload_photo(client_for(member)))
    cos_storage.set_fault("error", "moderation")
    step_is_retried(task, caplog, "内容审核暂不可用")
    assert not results_in(cos_storage), "nothing unaudited is left behind"

    cos_storage.set_fault("none")
    next_attempt(task)
    assert (task.status, task.audit) == (TaskStatus.SUCCESS, "passed")
    assert len(results_in(cos_storage)) == 3


# --- model_pose12 at RunningHub: helpers ---------------------------------------------------------


def step(task: Task) -> Broker:
    """Run the task's next step as its queued message would; what it queued."""
    with broker() as queued:
        task_advance(task_id=task.pk, token=None)
    task.refresh_from_db()
    return queued


def submitted(sim: SimulatorHandle, member: User, uploaded: str, **sim_settings: Any) -> Task:
    """A model_pose12 task RunningHub has accepted (its first step run)."""
    sim.configure(webhook=False, **sim_settings)
    task = order(member, TaskType.MODEL_POSE12, uploaded)
    step(task)
    assert task.status == TaskStatus.PROCESSING and task.vendor_task_id, task.error_message
    return task


def failed_with(task: Task, code: FailureCode, message: str) -> None:
    task.refresh_from_db()
    assert (task.status, task.failure_code, task.error_message) == (TaskStatus.FAILED, code, message)
    assert task.result_urls == [] and refunds(task) == 1
    assert quota_mismatches() == []


def started_ago(task: Task, settings: Any, *, timeouts: float) -> None:
    """Move the task's start `timeouts` processing timeouts into the past."""
    settings.TASK_PROCESSING_TIMEOUT = 600
    started = timezone.now() - timedelta(seconds=600 * timeouts)
    Task.objects.filter(pk=task.pk).update(started_at=started)


# --- the sweep's last look at RunningHub -------------------------------------------------------


@pytest.mark.usefixtures("prompt_templates")
def test_the_sweep_collects_a_job_that_finished_by_the_processing_timeout(
    sim: SimulatorHandle, member: User, uploaded: str, settings: Any
) -> None:
    task = submitted(sim, member, uploaded, run_time=0)
    bystander = make_task(member, TaskStatus.PROCESSING, task_type=TaskType.MODEL_POSE12, vendor_task_id="19000")
    started_ago(task, settings, timeouts=1.5)
    with broker() as queued:
        report = tasks_sweep()
    assert report.failed_processing == 0
    [(_name, (task_id, due), options)] = [sent for sent in queued.sent if sent[0] == "tasks.advance"]
    assert (task_id, options["queue"]) == (str(task.pk), "io"), "the finished job is collected now"
    task.refresh_from_db()
    assert task.status == TaskStatus.PROCESSING and due is not None
    assert Task.objects.get(pk=bystander.pk).next_attempt_at == bystander.next_attempt_at, "no other task woke"
    # The very message the sweep queued runs the step.
    with broker():
        task_advance(task_id=task.pk, token=datetime.fromisoformat(due))
    task.refresh_from_db()
    assert (task.status, len(task.result_urls), refunds(task)) == (TaskStatus.SUCCESS, 12, 0)


@pytest.mark.usefixtures("prompt_templates")
def test_past_twice_the_timeout_even_a_finished_job_fails_and_is_cancelled(
    sim: SimulatorHandle,
    member: User,
    uploaded: str,
    settings: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    task = submitted(sim, member, uploaded, run_time=0)
    started_ago(task, settings, timeouts=2.1)
    with broker() as queued, django_capture_on_commit_callbacks(execute=True):
        assert tasks_sweep().failed_processing == 1
    failed_with(task, FailureCode.PROCESSING_TIMEOUT, "处理超时")
    assert (CANCEL_VENDOR_TASK, (task.vendor_task_id,)) in [(name, args) for name, args, _ in queued.sent]
    assert queued.task_ids() == [], "nothing is collected"


@pytest.mark.usefixtures("prompt_templates")
def test_a_runninghub_error_at_the_last_look_fails_the_timed_out_task(
    sim: SimulatorHandle, member: User, uploaded: str, settings: Any
) -> None:
    task = submitted(sim, member, uploaded, run_time=0)
    started_ago(task, settings, timeouts=1.5)
    sim.configure(http_5xx=1)
    with broker() as queued:
        assert tasks_sweep().failed_processing == 1
    failed_with(task, FailureCode.PROCESSING_TIMEOUT, "处理超时")
    assert queued.task_ids() == []
    assert sim.state()["calls"]["/task/openapi/outputs"] == 1, "the one last look was made"


@pytest.mark.usefixtures("prompt_templates")
def test_a_job_still_running_at_the_timeout_fails(
    sim: SimulatorHandle, member: User, uploaded: str, settings: Any
) -> None:
    task = submitted(sim, member, uploaded, never_finish=True)
    started_ago(task, settings, timeouts=1.2)
    with broker():
        assert tasks_sweep().failed_processing == 1
    failed_with(task, FailureCode.PROCESSING_TIMEOUT, "处理超时")


@pytest.mark.usefixtures("prompt_templates")
def test_a_finished_job_whose_task_a_worker_holds_is_left_to_that_worker(
    sim: SimulatorHandle, member: User, uploaded: str, settings: Any
) -> None:
    task = submitted(sim, member, uploaded, run_time=0)
    started_ago(task, settings, timeouts=1.5)
    lease = timezone.now() + timedelta(seconds=30)
    Task.objects.filter(pk=task.pk).update(lease_until=lease)
    due = Task.objects.get(pk=task.pk).next_attempt_at
    with broker() as queued:
        assert tasks_sweep().failed_processing == 0
    assert sim.state()["calls"]["/task/openapi/outputs"] == 1, "the last look saw the job finished"
    assert queued.task_ids() == [], "no second worker is sent to collect it"
    task.refresh_from_db()
    assert (task.status, task.lease_until, task.next_attempt_at) == (TaskStatus.PROCESSING, lease, due)


def test_a_task_that_finished_before_its_last_look_is_left_as_it_is(sim: SimulatorHandle, member: User) -> None:
    """The sweep picked it as timed out; its worker finished it meanwhile."""
    task = make_task(member, TaskStatus.SUCCESS, task_type=TaskType.MODEL_POSE12, vendor_task_id="19001")
    with broker() as queued:
        assert task_processing_timed_out(task_id=task.pk) is False
    task.refresh_from_db()
    assert (task.status, refunds(task), queued.sent) == (TaskStatus.SUCCESS, 0, [])
    assert sim.state()["calls"].get("/task/openapi/outputs", 0) == 0


def test_a_timed_out_task_without_a_runninghub_job_fails_without_asking_runninghub(
    sim: SimulatorHandle, member: User
) -> None:
    task = make_task(member, TaskStatus.PROCESSING, age=timedelta(hours=2))
    with broker():
        assert task_processing_timed_out(task_id=task.pk) is True
    failed_with(task, FailureCode.PROCESSING_TIMEOUT, "处理超时")
    assert sim.state()["calls"].get("/task/openapi/outputs", 0) == 0


# --- submitting ----------------------------------------------------------------------------------


@pytest.mark.usefixtures("prompt_templates")
def test_a_final_runninghub_error_at_submit_fails_and_refunds(
    sim: SimulatorHandle, member: User, uploaded: str
) -> None:
    sim.configure(validation_error=True, webhook=False)
    task = order(member, TaskType.MODEL_POSE12, uploaded)
    queued = step(task)
    failed_with(task, FailureCode.PROVIDER_FAILED, "生成失败,请稍后重试")
    assert queued.task_ids() == []
    assert TaskEvent.objects.filter(task=task, to_status=TaskStatus.FAILED).get().reason.startswith("生成失败")


def test_a_missing_prompt_template_fails_at_once_with_a_refund(
    sim: SimulatorHandle, member: User, uploaded: str
) -> None:
    PromptTemplate.objects.all().delete()
    task = order(member, TaskType.MODEL_POSE12, uploaded)
    step(task)
    failed_with(task, FailureCode.PROVIDER_FAILED, "暂不支持该场景和品类")
    assert sim.state()["calls"].get("/task/openapi/ai-app/run", 0) == 0, "nothing was sent to RunningHub"


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("ending", ["cancelled", "timed out"])
def test_a_task_ended_while_submitting_cancels_the_job_runninghub_just_created(
    sim: SimulatorHandle, member: User, uploaded: str, prompt_templates: None, settings: Any, ending: str
) -> None:
    # Every RunningHub answer takes a second: the task ends while the run request is in flight.
    sim.configure(latency=1.0, webhook=False, never_finish=True)
    task = order(member, TaskType.MODEL_POSE12, uploaded)
    with broker() as queued:
        worker = threading.Thread(target=task_advance, kwargs={"task_id": task.pk, "token": None})
        worker.start()
        wait_for(lambda: sim.state()["calls"].get("/task/openapi/ai-app/run", 0) == 1, timeout=10, interval=0.02)
        if ending == "cancelled":
            task_cancel(task_id=task.pk, user=member)
        else:
            settings.TASK_PENDING_TIMEOUT = 60
            Task.objects.filter(pk=task.pk).update(created_at=timezone.now() - timedelta(minutes=5))
            assert tasks_sweep().failed_pending == 1
        worker.join(timeout=20)
    assert not worker.is_alive()
    state = sim.state()
    assert len(state["cancelled"]) == 1, ("the job RunningHub had just created was cancelled", state["calls"])
    task.refresh_from_db()
    assert (task.status, task.vendor_task_id, refunds(task)) == (TaskStatus.FAILED, "", 1)
    assert queued.task_ids() == [], "no poll is scheduled for it"


# --- collecting ----------------------------------------------------------------------------------


class Cdn:
    """A loopback stand-in for RunningHub's file server: every path answers `status` with `body`."""

    def __init__(self) -> None:
        self.status, self.body, self.requests = 200, b"", 0
        cdn = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                cdn.requests += 1
                self.send_response(cdn.status)
                self.send_header("Content-Type", "image/png")
                self.send_header("Content-Length", str(len(cdn.body)))
                self.end_headers()
                self.wfile.write(cdn.body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def cdn(sim: SimulatorHandle) -> Iterator[Cdn]:
    """RunningHub's /outputs name files on this server instead of the simulator's."""
    server = Cdn()
    sim.configure(public_url=server.url)
    yield server
    server.server.shutdown()
    server.server.server_close()


@pytest.mark.usefixtures("prompt_templates")
def test_a_final_error_from_outputs_fails_the_task(sim: SimulatorHandle, member: User, uploaded: str) -> None:
    task = submitted(sim, member, uploaded, run_time=0)
    sim.configure(error_code=1000, error_count=1)
    step(task)
    failed_with(task, FailureCode.PROVIDER_FAILED, "生成失败,请稍后重试")


@pytest.mark.usefixtures("prompt_templates")
def test_success_without_files_is_not_yet_done_and_times_out(
    sim: SimulatorHandle, member: User, uploaded: str, settings: Any
) -> None:
    """A finished pose12 run always saves files: an empty list means they are not there yet, so the
    task keeps polling (nothing is downloaded) until the processing timeout fails it."""
    task = submitted(sim, member, uploaded, run_time=0, output_count=0)
    for _ in range(2):
        assert step(task).task_ids() == [str(task.pk)], "polled again"
        assert (task.status, task.stage, task.transient_errors) == (TaskStatus.PROCESSING, "submitted", 0)
    assert sim.state()["calls"].get("/cdn", 0) == 0
    started_ago(task, settings, timeouts=1.2)
    with broker():
        assert tasks_sweep().failed_processing == 1
    failed_with(task, FailureCode.PROCESSING_TIMEOUT, "处理超时")


@pytest.mark.usefixtures("prompt_templates")
def test_a_transient_download_failure_is_retried(
    sim: SimulatorHandle, cdn: Cdn, member: User, uploaded: str, caplog: pytest.LogCaptureFixture
) -> None:
    task = submitted(sim, member, uploaded, run_time=0)
    cdn.status = 503
    step_is_retried(task, caplog, "结果下载失败")
    cdn.status, cdn.body = 200, product_photo()
    next_attempt(task)
    assert (task.status, len(task.result_urls)) == (TaskStatus.SUCCESS, 12)


@pytest.mark.usefixtures("prompt_templates")
@pytest.mark.parametrize(
    "status,body,message",
    [
        (404, b"", "生成失败,请稍后重试"),
        (200, b"\x89PNG\r\n\x1a\n but not really", "图片无效: 仅支持 JPEG、PNG、WebP 图片"),
    ],
    ids=["gone", "corrupt"],
)
def test_a_permanent_download_failure_or_a_corrupt_image_fails_the_task(
    sim: SimulatorHandle, cdn: Cdn, member: User, uploaded: str, status: int, body: bytes, message: str
) -> None:
    task = submitted(sim, member, uploaded, run_time=0)
    cdn.status, cdn.body = status, body
    step(task)
    failed_with(task, FailureCode.PROVIDER_FAILED, message)
    assert stored_results() == [], "nothing was stored"


@pytest.mark.usefixtures("prompt_templates")
def test_a_processing_task_without_a_vendor_id_fails(sim: SimulatorHandle, member: User, uploaded: str) -> None:
    task = submitted(sim, member, uploaded, never_finish=True)
    Task.objects.filter(pk=task.pk).update(vendor_task_id="")
    step(task)
    failed_with(task, FailureCode.PROVIDER_FAILED, "生成失败,请稍后重试")


# --- the input photo at run time -----------------------------------------------------------------


def ordered_from_the_web(member: User) -> Task:
    with public_dns(), broker():
        return task_create(user=member, task_type=TaskType.BASIC_CLEAN, input_image_url=INPUT_URL, params={}).task


def test_an_input_url_that_cannot_be_reached_now_is_retried(
    member: User, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    task = ordered_from_the_web(member)

    def refused(sock: socket.socket, address: Any) -> None:
        raise ConnectionRefusedError(111, "Connection refused")

    monkeypatch.setattr(socket.socket, "connect", refused)
    with public_dns():
        step_is_retried(task, caplog, "输入图片下载失败")


def test_an_input_url_whose_host_is_gone_fails_for_good(member: User, monkeypatch: pytest.MonkeyPatch) -> None:
    task = ordered_from_the_web(member)

    def unknown(*args: Any, **kwargs: Any) -> Any:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", unknown)
    step(task)
    failed_with(task, FailureCode.PROVIDER_FAILED, "输入图片无法下载")


def test_an_upload_deleted_before_the_run_fails_the_task(member: User, uploaded: str) -> None:
    task = order(member, TaskType.BASIC_CLEAN, uploaded)
    get_storage().delete(key=str(get_storage().key_for_url(uploaded)))
    step(task)
    failed_with(task, FailureCode.PROVIDER_FAILED, "输入图片不存在")


def test_unreadable_storage_is_retried(
    cos_storage: RunningCos, member: User, client_for: Client, caplog: pytest.LogCaptureFixture
) -> None:
    task = order(member, TaskType.BASIC_CLEAN, upload_photo(client_for(member)))
    cos_storage.set_fault("error")
    step_is_retried(task, caplog, "读取输入图片失败")
    cos_storage.set_fault("none")
    next_attempt(task)
    assert task.status == TaskStatus.SUCCESS


# --- a cancel racing a running worker ------------------------------------------------------------


@pytest.fixture
def held_audit(cos_storage: RunningCos, settings: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The CI audit (on the COS server) waits, once results are stored, until the test lets it go;
    `fail` makes the audit it lets go answer with an error."""
    settings.AUDIT_BACKEND = "tencent_ci"
    reached, proceed = threading.Event(), threading.Event()
    control = type("Held", (), {"reached": reached, "proceed": proceed, "fail": False})()
    original = cos_storage.state.moderation_for

    def held(key: str) -> Any:
        reached.set()
        proceed.wait(timeout=20)
        if control.fail:
            raise RuntimeError("moderation broke")
        return original(key)

    monkeypatch.setattr(cos_storage.state, "moderation_for", held)
    yield control
    proceed.set()


@pytest.mark.django_db(transaction=True)
def test_a_cancel_while_the_worker_audits_deletes_the_stored_results(
    held_audit: Any, cos_storage: RunningCos, member: User, client_for: Client
) -> None:
    task = order(member, TaskType.BASIC_CLEAN, upload_photo(client_for(member)))
    with broker() as queued:
        worker = threading.Thread(target=task_advance, kwargs={"task_id": task.pk, "token": None})
        worker.start()
        assert held_audit.reached.wait(timeout=20)
        assert len(results_in(cos_storage)) == 3, "the results are stored, waiting for the audit"
        task_cancel(task_id=task.pk, user=member)
        held_audit.proceed.set()
        worker.join(timeout=20)
    task.refresh_from_db()
    assert (task.status, task.failure_code, task.result_urls) == (TaskStatus.FAILED, FailureCode.CANCELLED, [])
    assert results_in(cos_storage) == [], "nobody will see them: they are deleted"
    assert refunds(task) == 1 and queued.task_ids() == []


@pytest.mark.django_db(transaction=True)
def test_a_worker_that_lost_its_lease_does_not_reschedule(
    held_audit: Any, cos_storage: RunningCos, member: User, client_for: Client
) -> None:
    task = order(member, TaskType.BASIC_CLEAN, upload_photo(client_for(member)))
    with broker() as queued:
        worker = threading.Thread(target=task_advance, kwargs={"task_id": task.pk, "token": None})
        worker.start()
        assert held_audit.reached.wait(timeout=20)
        # Another worker took the task over (its lease expired while this one waited).
        takeover = timezone.now() + timedelta(minutes=5)
        Task.objects.filter(pk=task.pk).update(lease_until=takeover, next_attempt_at=takeover)
        held_audit.fail = True
        held_audit.proceed.set()
        worker.join(timeout=20)
    task.refresh_from_db()
    assert (task.status, task.lease_until, task.next_attempt_at) == (TaskStatus.PROCESSING, takeover, takeover)
    assert task.transient_errors == 0, "the stale worker counted no error on a task it no longer holds"
    assert queued.task_ids() == [], "and scheduled nothing"
    assert results_in(cos_storage) == []


# --- the basic_clean engine at run time ----------------------------------------------------------


@pytest.fixture
def ci_engine(cos: RunningCos, settings: Any) -> RunningCos:
    """basic_clean by Tencent CI on the local COS server; the member's files stay on local disk."""
    settings.BASIC_CLEAN_ENGINE = "tencent_ci"
    settings.COS_SECRET_ID, settings.COS_SECRET_KEY = cos.secret_id, cos.secret_key
    settings.COS_BUCKET, settings.COS_REGION = cos.bucket, cos.region
    settings.COS_ENDPOINT_URL = cos.endpoint_url
    return cos


def test_an_engine_outage_is_retried(
    ci_engine: RunningCos, member: User, uploaded: str, caplog: pytest.LogCaptureFixture
) -> None:
    task = order(member, TaskType.BASIC_CLEAN, uploaded)
    ci_engine.set_fault("error")
    step_is_retried(task, caplog, "图片处理暂不可用")
    ci_engine.set_fault("none")
    next_attempt(task)
    assert (task.status, len(task.result_urls)) == (TaskStatus.SUCCESS, 3)


def test_an_engine_that_refuses_the_work_fails_the_task(
    ci_engine: RunningCos, member: User, uploaded: str, settings: Any
) -> None:
    settings.COS_SECRET_KEY = "not-the-key"
    task = order(member, TaskType.BASIC_CLEAN, uploaded)
    step(task)
    failed_with(task, FailureCode.PROVIDER_FAILED, "图片处理失败")
    assert stored_results() == []
