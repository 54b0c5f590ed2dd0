"""What a worker does with a task: run basic_clean, or submit model_pose12 to RunningHub and follow
it, then store the results in the product's own storage, audit them and finish the task.

Every step starts by claiming the task (a conditional UPDATE of its lease) and ends by scheduling
the next one, so duplicate messages, a webhook racing the poller and a crashed worker all resolve
to one worker doing the work. External calls are never made inside a database transaction.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta
from urllib.parse import urlencode

import structlog
from django.conf import settings
from django.utils import timezone

from aimodel.engines import EngineError, audit_blocks, audit_image, basic_clean, runninghub_client
from aimodel.runninghub import (
    OutcomeState,
    RunningHubClient,
    RunningHubError,
    RunningHubFinalError,
    RunningHubQueueFull,
)
from aimodel.selectors import prompt_for
from aimodel.types import AuditUnavailable, AuditVerdict, ImageOutput
from core.errors import ApplicationError
from media.fetch import FetchError, fetch
from media.images import image_inspect, image_sanitize
from media.services import media_result_key, media_result_stage, upload_key_for_user
from media.storage import get_storage
from tasks.dispatch import pose12_dispatch
from tasks.lifecycle import (
    task_claim,
    task_fail,
    task_lease_heartbeat,
    task_release,
    task_set_stage,
    task_start,
    task_succeed,
    task_wake,
)
from tasks.models import (
    SLOT_STAGES,
    FailureCode,
    Task,
    TaskStage,
    TaskStatus,
    TaskType,
    pending_cutoff,
    processing_hard_limit,
)
from tasks.queue import enqueue_advance

logger = logging.getLogger(__name__)

MAX_TRANSIENT_ERRORS = 10
# Waiting for RunningHub's queue backs off like an error but must not use up the error budget:
# it raises the shared counter only this far.
QUEUE_FULL_BACKOFF_STEPS = 3
MAX_BACKOFF_SECONDS = 60


class Retry(Exception):
    """Try again later; `counts` is False for waits that are not errors (RunningHub's queue is full)."""

    def __init__(self, reason: str, *, counts: bool = True) -> None:
        super().__init__(reason)
        self.counts = counts


class Fail(Exception):
    """The task cannot succeed. `message` is the product's own text for the member (never an
    exception's or a provider's); `detail` is for the status history and the log."""

    def __init__(self, message: str, *, detail: object = "", code: FailureCode = FailureCode.PROVIDER_FAILED) -> None:
        super().__init__(message)
        self.message, self.detail, self.code = message, str(detail), code


def _backoff(task: Task) -> float:
    return float(min(settings.RUNNINGHUB_POLL_INTERVAL * 2 ** min(task.transient_errors, 6), MAX_BACKOFF_SECONDS))


def task_advance(*, task_id: uuid.UUID, token: datetime | None) -> None:
    """Do the task's next step. `token` is the due time the message was queued for; None (a
    webhook) takes over whatever is scheduled."""
    structlog.contextvars.bind_contextvars(task_id=str(task_id))
    task = task_claim(task_id=task_id, token=token)
    if task is None:
        return
    structlog.contextvars.bind_contextvars(user_id=task.user_id, task_type=task.type)
    if task.status == TaskStatus.PENDING and task.created_at < pending_cutoff(timezone.now()):
        # Never start work the user has been told timed out; fail it now rather than at the next sweep.
        task_fail(task_id=task.pk, code=FailureCode.TIMEOUT, from_statuses=(TaskStatus.PENDING,))
        return
    try:
        with task_lease_heartbeat(task):
            if task.type == TaskType.BASIC_CLEAN:
                _run_basic_clean(task)
            elif task.status == TaskStatus.PENDING:
                _submit_pose12(task)
            else:
                _follow_pose12(task)
    except Retry as retry:
        if retry.counts and task.transient_errors + 1 >= MAX_TRANSIENT_ERRORS:
            task_fail(task_id=task.pk, code=FailureCode.RETRIES_EXHAUSTED, detail=str(retry))
            return
        logger.info("task %s will retry: %s", task.pk, retry)
        raise_count = retry.counts or task.transient_errors < QUEUE_FULL_BACKOFF_STEPS
        task_release(task=task, delay=_backoff(task), error=True if raise_count else None)
    except Fail as failure:
        task_fail(task_id=task.pk, code=failure.code, message=failure.message, detail=failure.detail)


# --- inputs and outputs -------------------------------------------------------------------------


def _input_image(task: Task) -> bytes:
    upload_key = upload_key_for_user(task.input_image_url, user_id=task.user_id)
    try:
        if upload_key is not None:
            return get_storage().read(key=upload_key)
        return fetch(task.input_image_url, user_url=True)
    except FetchError as exc:
        if exc.transient:
            raise Retry(f"输入图片下载失败: {exc}") from exc
        raise Fail("输入图片无法下载", detail=exc) from exc
    except FileNotFoundError as exc:
        raise Fail("输入图片不存在") from exc
    except OSError as exc:
        raise Retry(f"读取输入图片失败: {exc}") from exc


def _checked_image(name: str, data: bytes, *, sanitize: bool = True) -> ImageOutput:
    """The upload checks for any image that did not come through the upload endpoint. Files we
    pass on or store are re-encoded without metadata (no GPS goes to RunningHub or to our bucket);
    the engine's input only needs the checks, its outputs are new images."""
    try:
        if sanitize:
            data, info = image_sanitize(data=data)
        else:
            info = image_inspect(data=data)
    except ApplicationError as exc:
        raise Fail(f"图片无效: {exc.message('zh')}", detail=exc) from exc
    return ImageOutput(name=name, data=data, content_type=info.content_type, ext=info.ext)


def _store_audit_and_succeed(task: Task, outputs: list[ImageOutput]) -> None:
    task_set_stage(task_id=task.pk, stage=TaskStage.AUDITING)
    storage = get_storage()
    stage = media_result_stage()
    keys = [
        media_result_key(user_id=task.user_id, task_id=task.pk, stage=stage, index=n, ext=out.ext)
        for n, out in enumerate(outputs, 1)
    ]
    try:
        for key, out in zip(keys, outputs, strict=True):
            storage.save(key=key, data=out.data, content_type=out.content_type)
        verdicts = [audit_image(key=key) for key in keys]
    except (AuditUnavailable, OSError) as exc:
        # Unaudited files must not stay reachable while we wait to try again (or give up).
        _delete_quietly(keys)
        if isinstance(exc, AuditUnavailable):
            raise Retry(f"内容审核暂不可用: {exc}") from exc
        raise Retry(f"保存结果失败: {exc}") from exc
    blocked = [audit_blocks(v) for v in verdicts]
    logger.info(
        "audit.verdicts",
        extra={
            "verdicts": [v.verdict.value for v in verdicts],
            "labels": [v.label for v in verdicts if v.label],
            "blocked": sum(blocked),
        },
    )
    if any(blocked):
        _delete_quietly(keys)
        task_fail(task_id=task.pk, code=FailureCode.AUDIT_BLOCKED)
        return
    skipped = all(v.verdict == AuditVerdict.SKIPPED for v in verdicts)
    succeeded = task_succeed(
        task_id=task.pk,
        result_urls=[storage.url(key=key) for key in keys],
        audit="skipped" if skipped else "passed",
    )
    if succeeded is None:
        # Cancelled or failed while we worked: nobody will ever see these files.
        _delete_quietly(keys)


def _delete_quietly(keys: list[str]) -> None:
    storage = get_storage()
    for key in keys:
        try:
            storage.delete(key=key)
        except OSError:
            logger.warning("could not delete %s; it is left unreferenced", key, exc_info=True)


# --- basic_clean --------------------------------------------------------------------------------


def _run_basic_clean(task: Task) -> None:
    if task.status == TaskStatus.PENDING and task_start(task_id=task.pk) is None:
        return
    # The engine decodes the photo: it gets only what passed the same checks as an upload.
    image = _checked_image("input", _input_image(task), sanitize=False).data
    try:
        outputs = basic_clean(image=image, work_prefix=f"work/{task.pk}")
    except EngineError as exc:
        if exc.transient:
            raise Retry(f"图片处理暂不可用: {exc}") from exc
        raise Fail("图片处理失败", detail=exc) from exc
    _store_audit_and_succeed(task, outputs)


# --- model_pose12 -------------------------------------------------------------------------------


def _uploaded_input(task: Task, client: RunningHubClient) -> str:
    """RunningHub's name for the task's photo, uploading it the first time only: waiting out a
    full queue (421) does not send the photo again on every attempt."""
    if task.vendor_input:
        return task.vendor_input
    source = _checked_image("input", _input_image(task))
    file_name = client.upload_image(
        data=source.data, filename=f"{task.pk}.{source.ext}", content_type=source.content_type
    )
    Task.objects.filter(pk=task.pk).update(vendor_input=file_name)
    return file_name


def _submit_pose12(task: Task) -> None:
    if task.stage not in SLOT_STAGES and not pose12_dispatch(claimant_id=task.pk):
        return  # waits for a RunningHub slot; a finished job or the sweep wakes it
    client = runninghub_client()
    try:
        prompt = prompt_for(scene=task.params.get("scene", "street"), category=task.params.get("category", "dress"))
    except LookupError as exc:
        raise Fail("暂不支持该场景和品类", detail=exc) from exc
    base = settings.PUBLIC_BASE_URL.rstrip("/")
    webhook = (
        f"{base}/api/webhooks/runninghub?{urlencode({'token': settings.RUNNINGHUB_WEBHOOK_SECRET})}" if base else None
    )
    try:
        file_name = _uploaded_input(task, client)
        vendor_id = client.run_app(
            webapp_id=settings.RUNNINGHUB_WEBAPP_ID,
            node_info_list=[
                {"nodeId": settings.RUNNINGHUB_PROMPT_NODE_ID, "fieldName": "text", "fieldValue": prompt},
                {"nodeId": settings.RUNNINGHUB_IMAGE_NODE_ID, "fieldName": "image", "fieldValue": file_name},
            ],
            webhook_url=webhook,
        )
    except RunningHubQueueFull as exc:
        raise Retry("RunningHub 队列已满", counts=False) from exc
    except RunningHubFinalError as exc:
        raise Fail("生成失败,请稍后重试", detail=f"RunningHub submit: {exc}") from exc
    except RunningHubError as exc:
        raise Retry(f"RunningHub 暂不可用: {exc}") from exc
    due = timezone.now() + timedelta(seconds=settings.RUNNINGHUB_POLL_INTERVAL)
    if task_start(task_id=task.pk, vendor_task_id=vendor_id, next_attempt_at=due, stage=TaskStage.SUBMITTED) is None:
        # Cancelled or timed out while we were submitting: stop the job we just started.
        _cancel_quietly(vendor_id)
        return
    enqueue_advance(task_id=task.pk, task_type=task.type, due=due, countdown=settings.RUNNINGHUB_POLL_INTERVAL)


def _follow_pose12(task: Task) -> None:
    if not task.vendor_task_id:
        raise Fail("生成失败,请稍后重试", detail="no RunningHub task id")
    try:
        outcome = runninghub_client().outputs(task_id=task.vendor_task_id)
    except RunningHubFinalError as exc:
        raise Fail("生成失败,请稍后重试", detail=f"RunningHub outputs: {exc}") from exc
    except RunningHubError as exc:
        raise Retry(f"查询 RunningHub 失败: {exc}") from exc
    if outcome.state == OutcomeState.PENDING:
        if outcome.running:
            task_set_stage(task_id=task.pk, stage=TaskStage.RUNNING)
        task_release(task=task, delay=settings.RUNNINGHUB_POLL_INTERVAL, error=False)
        return
    if outcome.state == OutcomeState.FAILED:
        task_fail(
            task_id=task.pk,
            code=FailureCode.PROVIDER_FAILED,
            detail=f"RunningHub: {outcome.failed_reason or 'no reason given'}",
            cancel_vendor=False,
        )
        return
    task_set_stage(task_id=task.pk, stage=TaskStage.COLLECTING)
    images = [o for o in outcome.outputs if o.file_type.lower() in ("png", "jpg", "jpeg", "webp")]
    if len(images) < settings.RUNNINGHUB_EXPECTED_OUTPUTS:
        detail = f"{len(images)} of {settings.RUNNINGHUB_EXPECTED_OUTPUTS} images in /outputs"
        if task.outputs_rechecked:
            raise Fail("生成结果不完整,已退还配额", code=FailureCode.INCOMPLETE_RESULTS, detail=detail)
        # RunningHub may still be saving the last files: one more look before giving up.
        logger.info("task %s: %s, looking again", task.pk, detail)
        Task.objects.filter(pk=task.pk).update(outputs_rechecked=True)
        task_release(task=task, delay=settings.RUNNINGHUB_POLL_INTERVAL, error=None)
        return
    outputs = []
    for n, output in enumerate(images, 1):
        try:
            data = fetch(output.url, user_url=False)
        except FetchError as exc:
            if exc.transient:
                raise Retry(f"结果下载失败: {exc}") from exc
            raise Fail("生成失败,请稍后重试", detail=f"result download: {exc}") from exc
        outputs.append(_checked_image(f"shot{n:02d}", data))
    _store_audit_and_succeed(task, outputs)


def _cancel_quietly(vendor_task_id: str) -> None:
    try:
        runninghub_client().cancel(task_id=vendor_task_id)
    except RunningHubError:
        logger.warning("could not cancel RunningHub task %s", vendor_task_id, exc_info=True)


def task_processing_timed_out(*, task_id: uuid.UUID) -> bool:
    """Called by the sweep for a task processing past TASK_PROCESSING_TIMEOUT: one last look at
    RunningHub (a finished job is collected instead of failed, unless it is twice past the limit),
    then fail with a refund; task_fail cancels the RunningHub job. True when the task failed."""
    task = Task.objects.filter(pk=task_id, status=TaskStatus.PROCESSING).first()
    if task is None:
        return False
    if task.type == TaskType.MODEL_POSE12 and task.vendor_task_id and task.started_at:
        try:
            outcome = runninghub_client().outputs(task_id=task.vendor_task_id)
        except RunningHubError:
            outcome = None
        now = timezone.now()
        if (
            outcome is not None
            and outcome.state == OutcomeState.SUCCESS
            and now < processing_hard_limit(task.started_at)
        ):
            task_wake(task_id=task.pk, task_type=task.type, now=now)
            return False
    return (
        task_fail(task_id=task.pk, code=FailureCode.PROCESSING_TIMEOUT, from_statuses=(TaskStatus.PROCESSING,))
        is not None
    )
