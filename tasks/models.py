from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class TaskType(models.TextChoices):
    BASIC_CLEAN = "basic_clean", _("基础精修")
    MODEL_POSE12 = "model_pose12", _("模特12宫格")


class TaskStatus(models.TextChoices):
    PENDING = "pending", _("排队中")
    PROCESSING = "processing", _("处理中")
    SUCCESS = "success", _("成功")
    FAILED = "failed", _("失败")


ACTIVE_STATUSES = (TaskStatus.PENDING, TaskStatus.PROCESSING)


class TaskStage(models.TextChoices):
    """Where an unfinished task is (SPEC §8), finer than its status."""

    QUEUED = "queued", _("等待中")
    SUBMITTED = "submitted", _("已提交")
    RUNNING = "running", _("生成中")
    COLLECTING = "collecting", _("取回结果")
    AUDITING = "auditing", _("审核中")
    DONE = "done", _("已结束")


# A model_pose12 task in these stages holds one of RUNNINGHUB_MAX_CONCURRENCY slots.
SLOT_STAGES = (TaskStage.SUBMITTED, TaskStage.RUNNING)


class FailureCode(models.TextChoices):
    """Why a task failed (SPEC §8), kept beside the human message for grouping and filtering."""

    TIMEOUT = "timeout", _("排队超时")
    PROCESSING_TIMEOUT = "processing_timeout", _("处理超时")
    CANCELLED = "cancelled", _("已取消")
    PROVIDER_FAILED = "provider_failed", _("处理失败")
    AUDIT_BLOCKED = "audit_blocked", _("内容审核未通过")
    INCOMPLETE_RESULTS = "incomplete_results", _("结果不完整")
    RETRIES_EXHAUSTED = "retries_exhausted", _("多次重试后失败")
    SUPPORT = "support", _("客服处理")


def pending_cutoff(now: datetime) -> datetime:
    """A task created before this and still pending has timed out (TASK_PENDING_TIMEOUT)."""
    return now - timedelta(seconds=settings.TASK_PENDING_TIMEOUT)


def processing_cutoff(now: datetime) -> datetime:
    """A task started before this and still processing has timed out (TASK_PROCESSING_TIMEOUT)."""
    return now - timedelta(seconds=settings.TASK_PROCESSING_TIMEOUT)


def processing_hard_limit(started_at: datetime) -> datetime:
    """Past this even a finished RunningHub job is no longer collected: the task fails."""
    return started_at + timedelta(seconds=2 * settings.TASK_PROCESSING_TIMEOUT)


class TaskQuerySet(models.QuerySet["Task"]):
    """The timeout and lease rules as query conditions: the one place where "timed out" and "no
    worker holds it" are written, shared by the worker, the sweep, the admin and the dashboard."""

    def active(self) -> TaskQuerySet:
        return self.filter(status__in=ACTIVE_STATUSES)

    def stale_pending(self, now: datetime) -> TaskQuerySet:
        return self.filter(status=TaskStatus.PENDING, created_at__lt=pending_cutoff(now))

    def stale_processing(self, now: datetime) -> TaskQuerySet:
        return self.filter(status=TaskStatus.PROCESSING, started_at__lt=processing_cutoff(now))

    def stuck(self, now: datetime) -> TaskQuerySet:
        """Active tasks past their timeout: what the sweep will fail, and what support may retry."""
        return self.filter(stuck_condition(now))

    def lease_free(self, now: datetime) -> TaskQuerySet:
        """No worker holds the task (its lease is unset or has run out)."""
        return self.filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now))


def stuck_condition(now: datetime) -> Q:
    """The condition behind TaskQuerySet.stuck, for aggregates that filter inside COUNT()."""
    return Q(status=TaskStatus.PENDING, created_at__lt=pending_cutoff(now)) | Q(
        status=TaskStatus.PROCESSING, started_at__lt=processing_cutoff(now)
    )


class Task(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # (user, -created_at) serves look-ups by user, so the foreign key needs no index of its own.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="tasks", verbose_name=_("用户"), db_index=False
    )
    type = models.CharField(_("类型"), max_length=20, choices=TaskType.choices)
    status = models.CharField(_("状态"), max_length=12, choices=TaskStatus.choices, default=TaskStatus.PENDING)
    input_image_url = models.TextField(_("输入图片"))
    params = models.JSONField(_("参数"), default=dict, blank=True)
    result_urls = models.JSONField(_("结果"), default=list, blank=True)
    error_message = models.CharField(_("错误信息"), max_length=500, blank=True)
    failure_code = models.CharField(_("失败原因"), max_length=20, choices=FailureCode.choices, blank=True, default="")
    stage = models.CharField(_("阶段"), max_length=12, choices=TaskStage.choices, default=TaskStage.QUEUED)
    batch_id = models.UUIDField(_("批次"), null=True, blank=True)
    batch_index = models.PositiveSmallIntegerField(null=True, blank=True, editable=False)
    # When the task got its RunningHub slot: members are served round-robin by their last dispatch.
    dispatched_at = models.DateTimeField(null=True, blank=True, editable=False)
    # A pose12 answer with too few images gets one more look at /outputs before the task fails.
    outputs_rechecked = models.BooleanField(default=False, editable=False)
    vendor_task_id = models.CharField(_("RunningHub 任务ID"), max_length=32, blank=True, default="")
    vendor_input = models.CharField(_("RunningHub 输入文件"), max_length=255, blank=True, default="", editable=False)
    cost = models.PositiveSmallIntegerField(_("扣除配额"))
    audit = models.CharField(_("内容审核"), max_length=10, blank=True)
    # Scheduling: `next_attempt_at` is when the next step is due and doubles as the token a queued
    # message must present; `lease_until` is set while a worker works on the task. Together they
    # make duplicate deliveries harmless and let the sweep restart work whose message was lost.
    next_attempt_at = models.DateTimeField(null=True, blank=True, editable=False)
    lease_until = models.DateTimeField(null=True, blank=True, editable=False)
    transient_errors = models.PositiveSmallIntegerField(default=0, editable=False)
    # One-to-one so that the database, not a read-then-write check, keeps a task to a single retry:
    # a second retry of the same task would charge the member twice for the same photo.
    retry_of = models.OneToOneField(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="retried_by", verbose_name=_("重试自")
    )
    created_at = models.DateTimeField(_("创建时间"), auto_now_add=True)
    updated_at = models.DateTimeField(_("更新时间"), auto_now=True)
    started_at = models.DateTimeField(_("开始时间"), null=True, blank=True)
    completed_at = models.DateTimeField(_("完成时间"), null=True, blank=True)

    objects = TaskQuerySet.as_manager()

    class Meta:
        verbose_name = _("任务")
        verbose_name_plural = _("任务")
        permissions = [("run_task_actions", "可执行任务操作(失败退款、重试、补退)")]
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["user", "-created_at"], name="task_user_recent"),
            models.Index(fields=["status", "created_at"], name="task_status_created"),
            models.Index(
                fields=["next_attempt_at"],
                condition=models.Q(status__in=["pending", "processing"]),
                name="task_active_due",
            ),
            # RunningHub's job id, for its webhook. Only tasks that have one are in the index: the
            # others (every basic_clean task, every task before its submit) would add an entry at
            # each of their status changes to an index nobody reads them from.
            models.Index(fields=["vendor_task_id"], condition=~models.Q(vendor_task_id=""), name="task_vendor_id"),
            # pose12 tasks waiting for a RunningHub slot, and those holding one.
            models.Index(
                fields=["stage", "created_at"],
                condition=models.Q(type="model_pose12", status__in=["pending", "processing"]),
                name="task_pose12_dispatch",
            ),
            models.Index(
                fields=["user", "batch_id"], condition=models.Q(batch_id__isnull=False), name="task_user_batch"
            ),
            # Who got a RunningHub slot lately (members take turns by it).
            models.Index(
                fields=["dispatched_at"], condition=models.Q(dispatched_at__isnull=False), name="task_dispatched"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_type_display()} {self.id}"


class TaskEvent(models.Model):
    # The (task, at) index serves look-ups by task; a separate foreign-key index would be redundant.
    task = models.ForeignKey(
        Task, on_delete=models.CASCADE, related_name="events", verbose_name=_("任务"), db_index=False
    )
    from_status = models.CharField(_("原状态"), max_length=12, choices=TaskStatus.choices, blank=True)
    to_status = models.CharField(_("新状态"), max_length=12, choices=TaskStatus.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("操作人"),
    )
    stage = models.CharField(_("阶段"), max_length=12, choices=TaskStage.choices, blank=True, db_default="")
    reason = models.CharField(_("原因"), max_length=500, blank=True)
    at = models.DateTimeField(_("时间"), auto_now_add=True)

    class Meta:
        verbose_name = _("状态变更")
        verbose_name_plural = _("状态变更")
        ordering = ["at", "id"]
        indexes = [models.Index(fields=["task", "at"], name="taskevent_task_at")]

    def __str__(self) -> str:
        return f"{self.from_status or '-'} → {self.to_status}"


class IdempotencyKey(models.Model):
    """Create requests replayed with the same key answer with the first task (SPEC §4), for 24 h."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    request_hash = models.CharField(max_length=64)
    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "key"], name="idempotency_key_per_user")]

    def __str__(self) -> str:
        return self.key


class TaskCounter(models.Model):
    """How many tasks a member has in each status and type, kept in the same transactions that
    create a task or change its status (tasks/counters.py), so the list's `total` is a sum over at
    most eight rows instead of a COUNT over the member's whole history."""

    # The unique (user, status, type) index serves look-ups by user.
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+", db_index=False)
    status = models.CharField(max_length=12, choices=TaskStatus.choices)
    type = models.CharField(max_length=20, choices=TaskType.choices)
    n = models.BigIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "status", "type"], name="taskcounter_user_status_type")]

    def __str__(self) -> str:
        return f"{self.user_id} {self.status} {self.type} {self.n}"
