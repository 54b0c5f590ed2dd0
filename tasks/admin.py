"""The support console for tasks. Every action goes through the task services (which lock the
row, write the status history and move quota through the ledger); this module only shows and asks."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.timesince import timesince

from core.admin import ReadOnlyAdminMixin
from core.errors import ApplicationError
from media.storage import get_storage
from tasks.actions import task_refund_missing, task_retry
from tasks.lifecycle import task_fail
from tasks.models import ACTIVE_STATUSES, FailureCode, Task, TaskEvent, TaskStatus, stuck_condition
from tasks.selectors import with_refund

STATUS_COLOURS = {
    TaskStatus.PENDING: "#6b7280",
    TaskStatus.PROCESSING: "#2563eb",
    TaskStatus.SUCCESS: "#16a34a",
    TaskStatus.FAILED: "#dc2626",
}

# The change page offers the actions for its one task under shorter names.
ACTION_BUTTONS = {"fail_and_refund": "失败并退款", "retry": "重试", "refund_missing": "补退配额"}


def format_duration(duration: timedelta) -> str:
    seconds = int(duration.total_seconds())
    if seconds < 60:
        return f"{seconds}秒"
    if seconds < 3600:
        return f"{seconds // 60}分{seconds % 60}秒"
    return f"{seconds // 3600}小时{seconds % 3600 // 60}分"


def image_link(url: str, height: int) -> str:
    # Only web URLs become images: a stored value is shown, never interpreted.
    if not url.startswith(("https://", "http://")):
        return format_html("<code>{}</code>", url)
    # Our own files in a private bucket need a fresh signature to be shown.
    url = get_storage().signed(url)
    return format_html(
        '<a href="{}" target="_blank" rel="noopener"><img src="{}" alt="" style="max-height:{}px;'
        'max-width:{}px;margin:0 8px 8px 0;border:1px solid #ddd;background:#f6f6f6"></a>',
        url,
        url,
        height,
        height * 2,
    )


class FailReasonForm(forms.Form):
    reason = forms.CharField(
        label="原因", max_length=200, help_text="会作为任务的错误信息展示给用户,并写入状态历史和配额流水"
    )


class StuckFilter(admin.SimpleListFilter):
    title = "超时未完成"
    parameter_name = "stuck"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("yes", "已超过超时时间")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Task]) -> QuerySet[Task]:
        if self.value() == "yes":
            return queryset.filter(stuck_condition(timezone.now()))
        return queryset


class TaskEventInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = TaskEvent
    verbose_name_plural = "状态历史"
    fields = ("at", "from_status", "to_status", "actor", "reason")
    readonly_fields = fields
    can_delete = False
    extra = 0

    def get_queryset(self, request: HttpRequest) -> QuerySet[TaskEvent]:
        return super().get_queryset(request).select_related("actor")


@admin.register(Task)
class TaskAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "short_id",
        "user_link",
        "type",
        "status_badge",
        "created_at",
        "age",
        "duration",
        "cost",
        "refunded",
        "error_message",
    )
    list_filter = ("status", "type", "failure_code", StuckFilter, "created_at")
    list_select_related = ("user",)
    search_fields = ("user__username", "=user__phone", "=vendor_task_id")
    search_help_text = "任务 ID、用户名、手机号或 RunningHub 任务 ID"
    date_hierarchy = "created_at"
    show_full_result_count = False
    inlines = (TaskEventInline,)
    actions = ("fail_and_refund", "retry", "refund_missing")
    fieldsets = (
        (None, {"fields": ("id", "user_link", "type", "status_badge", "failure_code", "error_message", "retry_links")}),
        ("输入", {"fields": ("input_preview", "params_pretty")}),
        ("结果", {"fields": ("result_preview", "audit")}),
        ("配额", {"fields": ("cost", "refunded")}),
        ("处理", {"fields": ("vendor_task_id", "created_at", "started_at", "completed_at", "updated_at", "duration")}),
    )
    readonly_fields = (
        "id",
        "user_link",
        "type",
        "status_badge",
        "failure_code",
        "error_message",
        "retry_links",
        "input_preview",
        "params_pretty",
        "result_preview",
        "audit",
        "cost",
        "refunded",
        "vendor_task_id",
        "created_at",
        "started_at",
        "completed_at",
        "updated_at",
        "duration",
    )

    def get_queryset(self, request: HttpRequest) -> QuerySet[Task]:
        return with_refund(super().get_queryset(request))

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Task], search_term: str
    ) -> tuple[QuerySet[Task], bool]:
        try:
            task_id = uuid.UUID(search_term.strip())
        except ValueError:
            return super().get_search_results(request, queryset, search_term)
        return queryset.filter(pk=task_id), False

    def has_run_task_actions_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("tasks.run_task_actions")

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        available = self.get_actions(request)
        buttons = [(name, label) for name, label in ACTION_BUTTONS.items() if name in available]
        extra_context = {**(extra_context or {}), "task_buttons": buttons, "action_checkbox_name": ACTION_CHECKBOX_NAME}
        return super().change_view(request, object_id, form_url, extra_context)

    # --- columns --------------------------------------------------------------------------------

    @admin.display(description="任务", ordering="id")
    def short_id(self, task: Task) -> str:
        return str(task.id)[:8]

    @admin.display(description="用户", ordering="user__username")
    def user_link(self, task: Task) -> str:
        url = reverse("admin:accounts_user_change", args=[task.user_id])
        return format_html('<a href="{}">{}</a> {}', url, task.user.username, task.user.phone or "")

    @admin.display(description="状态", ordering="status")
    def status_badge(self, task: Task) -> str:
        return format_html(
            '<span style="color:#fff;background:{};padding:1px 8px;border-radius:9px;white-space:nowrap">{}</span>',
            STATUS_COLOURS[TaskStatus(task.status)],
            task.get_status_display(),
        )

    @admin.display(description="已创建", ordering="created_at")
    def age(self, task: Task) -> str:
        return f"{timesince(task.created_at)}前"

    @admin.display(description="耗时")
    def duration(self, task: Task) -> str:
        if task.started_at is None:
            return "-"
        end = task.completed_at or timezone.now()
        running = "" if task.completed_at else "(进行中)"
        return format_duration(end - task.started_at) + running

    @admin.display(description="已退还配额")
    def refunded(self, task: Task) -> int:
        return int(getattr(task, "quota_refunded", 0))

    @admin.display(description="输入图片")
    def input_preview(self, task: Task) -> str:
        return image_link(task.input_image_url, 200)

    @admin.display(description="结果图片")
    def result_preview(self, task: Task) -> str:
        if not task.result_urls:
            return "-"
        return format_html_join("", "{}", ((image_link(url, 160),) for url in task.result_urls))

    @admin.display(description="参数")
    def params_pretty(self, task: Task) -> str:
        return format_html("<pre>{}</pre>", json.dumps(task.params, ensure_ascii=False, indent=2))

    @admin.display(description="重试")
    def retry_links(self, task: Task) -> str:
        links = []
        if task.retry_of_id:
            links.append(("重试自", reverse("admin:tasks_task_change", args=[task.retry_of_id]), task.retry_of_id))
        retried_by = Task.objects.filter(retry_of=task).values_list("pk", flat=True).first()
        if retried_by:
            links.append(("已重试为", reverse("admin:tasks_task_change", args=[retried_by]), retried_by))
        if not links:
            return "-"
        return format_html_join(" · ", '{} <a href="{}">{}</a>', links)

    # --- actions --------------------------------------------------------------------------------

    @admin.action(description="失败并退款", permissions=["run_task_actions"])
    def fail_and_refund(self, request: HttpRequest, queryset: QuerySet[Task]) -> HttpResponse | None:
        form = FailReasonForm(request.POST if "apply" in request.POST else None)
        if form.is_valid():
            reason = form.cleaned_data["reason"]
            selected = list(queryset.values_list("pk", flat=True))
            failed = [
                pk
                for pk in selected
                if task_fail(task_id=pk, code=FailureCode.SUPPORT, message=reason, actor=request.user)  # type: ignore[arg-type]
                is not None
            ]
            skipped = len(selected) - len(failed)
            self.message_user(request, f"已将 {len(failed)} 个任务标记为失败并退还配额。", messages.SUCCESS)
            if skipped:
                self.message_user(request, f"{skipped} 个任务已结束,未作改动。", messages.WARNING)
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": "失败并退款",
            "opts": self.opts,
            "form": form,
            "tasks": queryset.select_related("user"),
            "action_checkbox_name": ACTION_CHECKBOX_NAME,
            "active_statuses": ACTIVE_STATUSES,
        }
        return TemplateResponse(request, "admin/tasks/task/fail_and_refund.html", context)

    @admin.action(description="重试(作为新任务,正常扣费)", permissions=["run_task_actions"])
    def retry(self, request: HttpRequest, queryset: QuerySet[Task]) -> None:
        for pk in queryset.values_list("pk", flat=True):
            try:
                retry = task_retry(task_id=pk, actor=request.user)  # type: ignore[arg-type]
            except ApplicationError as error:
                self.message_user(request, f"任务 {str(pk)[:8]} 未重试:{error.message('zh')}", messages.ERROR)
                continue
            url = reverse("admin:tasks_task_change", args=[retry.pk])
            message = format_html('任务 {} 已重试为 <a href="{}">{}</a>', str(pk)[:8], url, str(retry.pk)[:8])
            self.message_user(request, message, messages.SUCCESS)

    @admin.action(description="补退配额(失败但未退款的任务)", permissions=["run_task_actions"])
    def refund_missing(self, request: HttpRequest, queryset: QuerySet[Task]) -> None:
        for pk in queryset.values_list("pk", flat=True):
            try:
                row = task_refund_missing(task_id=pk, actor=request.user)  # type: ignore[arg-type]
            except ApplicationError as error:
                self.message_user(request, f"任务 {str(pk)[:8]} 未补退:{error.message('zh')}", messages.WARNING)
                continue
            self.message_user(request, f"任务 {str(pk)[:8]} 已补退 {row.delta} 配额。", messages.SUCCESS)
