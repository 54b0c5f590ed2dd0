"""The support console for tasks. Every action goes through the task services (which lock the
row, write the status history and move quota through the ledger); this module only shows and asks.

It also makes the member page support's hub: the accounts app's user admin, plus the member's
latest tasks (the accounts app cannot know tasks; this app may know accounts)."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.admin.utils import flatten_fieldsets
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.text import Truncator, format_lazy
from django.utils.timesince import timesince
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from accounts.admin import LedgerInline, UserAdmin, latest_rows
from accounts.forms import COMPENSATE
from accounts.models import User
from core.admin import ReadOnlyAdminMixin, task_admin_link, to_the_second
from core.errors import ApplicationError
from core.exceptions import current_language
from media.storage import get_storage
from tasks.actions import task_refund_missing, task_retry
from tasks.lifecycle import task_fail
from tasks.models import (
    ACTIVE_STATUSES,
    FailureCode,
    Task,
    TaskEvent,
    TaskStatus,
    pending_cutoff,
    processing_cutoff,
    stuck_condition,
)
from tasks.selectors import with_refund

STATUS_COLOURS = {
    TaskStatus.PENDING: "#6b7280",
    TaskStatus.PROCESSING: "#2563eb",
    TaskStatus.SUCCESS: "#16a34a",
    TaskStatus.FAILED: "#dc2626",
}

AUDIT_LABELS = {"passed": _("通过"), "skipped": _("未审核(未启用)"), "blocked": _("未通过")}

# The change page offers the actions for its one task under shorter names.
ACTION_BUTTONS = {"fail_and_refund": _("失败并退款"), "retry": _("重试"), "refund_missing": _("补退配额")}

RECENT_TASK_ROWS = 10
ERROR_PREVIEW_CHARACTERS = 40


def format_duration(duration: timedelta) -> str:
    seconds = int(duration.total_seconds())
    if seconds < 60:
        return gettext("%(s)d秒") % {"s": seconds}
    if seconds < 3600:
        return gettext("%(m)d分%(s)d秒") % {"m": seconds // 60, "s": seconds % 60}
    return gettext("%(h)d小时%(m)d分") % {"h": seconds // 3600, "m": seconds % 3600 // 60}


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


def short(task_id: Any) -> str:
    return str(task_id)[:8]


def status_badge(task: Task) -> str:
    return format_html(
        '<span style="color:#fff;background:{};padding:1px 8px;border-radius:9px;white-space:nowrap">{}</span>',
        STATUS_COLOURS[TaskStatus(task.status)],
        task.get_status_display(),
    )


def is_stuck(task: Task, now: datetime) -> bool:
    """The Python twin of `stuck_condition`, for the one task a page already holds."""
    if task.status == TaskStatus.PENDING:
        return task.created_at < pending_cutoff(now)
    if task.status == TaskStatus.PROCESSING:
        return task.started_at is not None and task.started_at < processing_cutoff(now)
    return False


def applicable_actions(task: Task, *, retried: bool, now: datetime) -> set[str]:
    """The actions that can change something for this task; the services refuse the others."""
    if task.status in ACTIVE_STATUSES:
        return {"fail_and_refund", "retry"} if is_stuck(task, now) else {"fail_and_refund"}
    if task.status == TaskStatus.FAILED:
        refunded = int(getattr(task, "quota_refunded", 0)) > 0
        return ({"retry"} if not retried else set()) | ({"refund_missing"} if not refunded else set())
    return set()


def back_to(request: HttpRequest) -> HttpResponseRedirect | None:
    """Where a task page's button came from, so the answer lands on that task again; None sends
    a changelist action back to the filtered list it was run on (Django keeps the query string)."""
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        return HttpResponseRedirect(target)
    return None


class FailReasonForm(forms.Form):
    reason = forms.CharField(
        label=_("原因"), max_length=200, help_text=_("会作为任务的错误信息展示给用户,并写入状态历史和配额流水")
    )


class StuckFilter(admin.SimpleListFilter):
    title = _("超时未完成")
    parameter_name = "stuck"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [("yes", _("已超过超时时间"))]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Task]) -> QuerySet[Task]:
        if self.value() == "yes":
            return queryset.filter(stuck_condition(timezone.now()))
        return queryset


class TaskEventInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = TaskEvent
    template = "admin/edit_inline/readonly_tabular.html"
    verbose_name_plural = _("状态历史")
    empty_text = _("没有状态变更")
    fields = ("time", "change", "actor", "reason")
    readonly_fields = fields
    can_delete = False
    extra = 0

    def get_queryset(self, request: HttpRequest) -> QuerySet[TaskEvent]:
        return super().get_queryset(request).select_related("actor")

    @admin.display(description=_("时间"))
    def time(self, event: TaskEvent) -> str:
        return to_the_second(event.at)

    @admin.display(description=_("状态变化"))
    def change(self, event: TaskEvent) -> str:
        before = event.get_from_status_display() if event.from_status else gettext("(新建)")
        return f"{before} → {event.get_to_status_display()}"


@admin.register(Task)
class TaskAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    # Few, compact columns: at 1,440 px, between the navigation and the filters, the failure column
    # must show without scrolling.
    list_display = ("short_id", "user_link", "type", "status_badge", "created", "duration", "quota", "failure")
    list_filter = ("status", "type", "failure_code", StuckFilter, "created_at")
    list_select_related = ("user",)
    search_fields = ("user__username", "=user__phone", "=vendor_task_id")
    search_help_text = _("任务 ID、用户名、手机号或 RunningHub 任务 ID")
    date_hierarchy = "created_at"
    show_full_result_count = False
    inlines = (TaskEventInline,)
    actions = ("fail_and_refund", "retry", "refund_missing")
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "task_id",
                    "user_link",
                    "type",
                    "status_badge",
                    "failure_code",
                    "error_message",
                    "retry_links",
                )
            },
        ),
        (_("输入"), {"fields": ("input_preview", "params_pretty")}),
        (_("结果"), {"fields": ("result_preview", "audit_result")}),
        (_("配额"), {"fields": ("cost", "refunded")}),
        (
            _("处理"),
            {"fields": ("vendor_task_id", "created_at", "started_at", "completed_at", "updated_at", "duration")},
        ),
    )
    # Everything shown is read-only: tasks change through the actions only.
    readonly_fields = flatten_fieldsets(fieldsets)

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
        task = self.get_object(request, object_id)
        buttons: list[tuple[str, Any]] = []
        compensate_url = ""
        if task is not None:
            available = self.get_actions(request)
            retried = Task.objects.filter(retry_of=task).exists()
            applicable = applicable_actions(task, retried=retried, now=timezone.now())
            buttons = [
                (name, label) for name, label in ACTION_BUTTONS.items() if name in available and name in applicable
            ]
            if task.status == TaskStatus.FAILED and request.user.has_perm("accounts.adjust_quota"):
                compensate_url = compensate_link(task)
        extra_context = {
            **(extra_context or {}),
            "task_buttons": buttons,
            "compensate_url": compensate_url,
            "action_checkbox_name": ACTION_CHECKBOX_NAME,
        }
        return super().change_view(request, object_id, form_url, extra_context)

    # --- columns --------------------------------------------------------------------------------

    @admin.display(description=_("任务"), ordering="id")
    def short_id(self, task: Task) -> str:
        return short(task.id)

    @admin.display(description=_("任务 ID"))
    def task_id(self, task: Task) -> str:
        return str(task.id)

    @admin.display(description=_("用户"), ordering="user__username")
    def user_link(self, task: Task) -> str:
        url = reverse("admin:accounts_user_change", args=[task.user_id])
        return format_html('<a href="{}">{}</a> {}', url, task.user.username, task.user.phone or "")

    @admin.display(description=_("状态"), ordering="status")
    def status_badge(self, task: Task) -> str:
        return status_badge(task)

    @admin.display(description=_("创建时间"), ordering="created_at")
    def created(self, task: Task) -> str:
        ago = gettext("%(time)s前") % {"time": timesince(task.created_at)}
        moment = date_format(timezone.localtime(task.created_at), "m-d H:i")
        return format_html(
            '<span title="{}">{}</span><br><small class="quiet">{}</small>', to_the_second(task.created_at), moment, ago
        )

    @admin.display(description=_("配额"))
    def quota(self, task: Task) -> str:
        refunded = int(getattr(task, "quota_refunded", 0))
        return gettext("扣 %(cost)d · 退 %(refunded)d") % {"cost": task.cost, "refunded": refunded}

    @admin.display(description=_("耗时"))
    def duration(self, task: Task) -> str:
        if task.started_at is None:
            return "-"
        if task.completed_at is not None:
            return format_duration(task.completed_at - task.started_at)
        spent = format_duration(timezone.now() - task.started_at)
        return format_html('{}<br><small class="quiet">{}</small>', spent, gettext("进行中"))

    @admin.display(description=_("已退还配额"))
    def refunded(self, task: Task) -> int:
        return int(getattr(task, "quota_refunded", 0))

    @admin.display(description=_("失败原因"), ordering="failure_code")
    def failure(self, task: Task) -> str:
        """The failure code's label, then the message cut short; the whole message is the tooltip."""
        if not task.failure_code and not task.error_message:
            return "-"
        label = task.get_failure_code_display() if task.failure_code else ""
        # The member's message often is the label itself; it is said once.
        message = "" if task.error_message == label else task.error_message
        preview = Truncator(message).chars(ERROR_PREVIEW_CHARACTERS)
        return format_html(
            '<span class="task-error" title="{}"><strong>{}</strong> {}</span>', task.error_message, label, preview
        )

    @admin.display(description=_("内容审核"))
    def audit_result(self, task: Task) -> str:
        return str(AUDIT_LABELS.get(task.audit, task.audit or "-"))

    @admin.display(description=_("输入图片"))
    def input_preview(self, task: Task) -> str:
        return image_link(task.input_image_url, 200)

    @admin.display(description=_("结果图片"))
    def result_preview(self, task: Task) -> str:
        if not task.result_urls:
            return "-"
        return format_html_join("", "{}", ((image_link(url, 160),) for url in task.result_urls))

    @admin.display(description=_("参数"))
    def params_pretty(self, task: Task) -> str:
        return format_html("<pre>{}</pre>", json.dumps(task.params, ensure_ascii=False, indent=2))

    @admin.display(description=_("重试"))
    def retry_links(self, task: Task) -> str:
        links = []
        if task.retry_of_id:
            links.append(
                (gettext("重试自"), reverse("admin:tasks_task_change", args=[task.retry_of_id]), task.retry_of_id)
            )
        retried_by = Task.objects.filter(retry_of=task).values_list("pk", flat=True).first()
        if retried_by:
            links.append((gettext("已重试为"), reverse("admin:tasks_task_change", args=[retried_by]), retried_by))
        if not links:
            return "-"
        return format_html_join(" · ", '{} <a href="{}">{}</a>', links)

    # --- actions --------------------------------------------------------------------------------

    def confirm(self, request: HttpRequest, queryset: QuerySet[Task], action: str, **context: Any) -> HttpResponse:
        """The page that asks before an action: it posts back to the URL it came from (the filtered
        list keeps its query string) and carries the task page's `next` along."""
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "action": action,
            "tasks": queryset.select_related("user"),
            "action_checkbox_name": ACTION_CHECKBOX_NAME,
            "active_statuses": ACTIVE_STATUSES,
            "next": request.POST.get("next", ""),
            "cancel_url": request.POST.get("next") or request.get_full_path(),
            **context,
        }
        return TemplateResponse(request, "admin/tasks/task/confirm_action.html", context)

    @admin.action(description=_("失败并退款"), permissions=["run_task_actions"])
    def fail_and_refund(self, request: HttpRequest, queryset: QuerySet[Task]) -> HttpResponse | None:
        form = FailReasonForm(request.POST if "apply" in request.POST else None)
        if not form.is_valid():
            return self.confirm(
                request,
                queryset,
                "fail_and_refund",
                form=form,
                title=gettext("失败并退款"),
                intro=gettext(
                    "以下任务将被标记为失败,并退还其扣除的配额(每个任务只会退还一次)。已结束的任务不会改动。"
                ),
                submit=gettext("确认失败并退款"),
            )
        reason = form.cleaned_data["reason"]
        selected = list(queryset.values_list("pk", flat=True))
        failed = []
        for pk in selected:
            task = task_fail(task_id=pk, code=FailureCode.SUPPORT, message=reason, actor=request.user)  # type: ignore[arg-type]
            if task is not None:
                failed.append(task)
                self.log_change(request, task, gettext("失败并退款。原因:%(reason)s") % {"reason": reason})
        skipped = len(selected) - len(failed)
        if failed:
            message = ngettext(
                "已将 %(n)d 个任务标记为失败并退还配额。", "已将 %(n)d 个任务标记为失败并退还配额。", len(failed)
            )
            self.message_user(request, message % {"n": len(failed)}, messages.SUCCESS)
        if skipped:
            message = ngettext(
                "%(n)d 个任务已结束(成功或已失败),未作改动,也没有退款。",
                "%(n)d 个任务已结束(成功或已失败),未作改动,也没有退款。",
                skipped,
            )
            self.message_user(request, message % {"n": skipped}, messages.WARNING)
        if not selected:
            self.message_user(
                request,
                gettext("没有任务被改动:所选任务已不在当前筛选结果中(可能刚被处理或已结束)。"),
                messages.WARNING,
            )
        return back_to(request)

    @admin.action(description=_("重试(作为新任务,正常扣费)"), permissions=["run_task_actions"])
    def retry(self, request: HttpRequest, queryset: QuerySet[Task]) -> HttpResponse | None:
        if "apply" not in request.POST:
            return self.confirm(
                request,
                queryset,
                "retry",
                title=gettext("重试"),
                intro=gettext(
                    "每个任务将作为新任务重新提交,并像新建任务一样从会员的配额中扣费(卡住或未退款的原任务会先退还)。"
                    "会员没有有效会员资格或配额不足时不会重试。"
                ),
                submit=gettext("确认重试并扣费"),
                show_balance=True,
            )
        for pk in queryset.values_list("pk", flat=True):
            try:
                retry = task_retry(task_id=pk, actor=request.user)  # type: ignore[arg-type]
            except ApplicationError as error:
                message = gettext("任务 %(task)s 未重试:%(why)s")
                self.message_user(
                    request, message % {"task": short(pk), "why": error.message(current_language())}, messages.ERROR
                )
                continue
            self.log_change(request, retry.retry_of, gettext("重试为新任务 %(task)s(已扣费)") % {"task": retry.pk})
            message = format_html(
                gettext("任务 {} 已重试为 {},已从会员配额扣除 {}。"), short(pk), task_admin_link(retry.pk), retry.cost
            )
            self.message_user(request, message, messages.SUCCESS)
        return back_to(request)

    @admin.action(description=_("补退配额(失败但未退款的任务)"), permissions=["run_task_actions"])
    def refund_missing(self, request: HttpRequest, queryset: QuerySet[Task]) -> HttpResponse | None:
        for pk in queryset.values_list("pk", flat=True):
            try:
                row = task_refund_missing(task_id=pk, actor=request.user)  # type: ignore[arg-type]
            except ApplicationError as error:
                message = gettext("任务 %(task)s 未补退:%(why)s")
                self.message_user(
                    request, message % {"task": short(pk), "why": error.message(current_language())}, messages.WARNING
                )
                continue
            self.log_change(request, Task.objects.get(pk=pk), gettext("补退 %(n)d 配额") % {"n": row.delta})
            message = gettext("任务 %(task)s 已补退 %(n)d 配额。") % {"task": short(pk), "n": row.delta}
            self.message_user(request, message, messages.SUCCESS)
        return back_to(request)


def compensate_link(task: Task) -> str:
    url = reverse("admin:accounts_user_quota", args=[task.user_id])
    return f"{url}?operation={COMPENSATE}&task={task.pk}"


# --- the member page ----------------------------------------------------------------------------


class RecentTaskInline(ReadOnlyAdminMixin, admin.TabularInline):
    """The member's latest tasks, each a link to its page (and, for a failed one, to compensation)."""

    model = Task
    fk_name = "user"
    template = "admin/edit_inline/readonly_tabular.html"
    verbose_name_plural = format_lazy(_("最近 {rows} 个任务"), rows=RECENT_TASK_ROWS)
    empty_text = _("没有任务")
    fields = ("link", "created", "type", "status_badge", "failure_code", "cost", "refunded", "compensate")
    readonly_fields = fields
    can_delete = False
    extra = 0

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if request.user.has_perm("accounts.adjust_quota"):
            return self.fields
        return tuple(name for name in self.fields if name != "compensate")

    @admin.display(description=_("任务"))
    def link(self, task: Task) -> str:
        return task_admin_link(task.pk)

    @admin.display(description=_("创建时间"))
    def created(self, task: Task) -> str:
        return to_the_second(task.created_at)

    @admin.display(description=_("状态"))
    def status_badge(self, task: Task) -> str:
        return status_badge(task)

    @admin.display(description=_("扣除配额"))
    def cost(self, task: Task) -> int:
        return task.cost

    @admin.display(description=_("已退还配额"))
    def refunded(self, task: Task) -> int:
        return int(getattr(task, "quota_refunded", 0))

    @admin.display(description=_("补偿"))
    def compensate(self, task: Task) -> str:
        if task.status != TaskStatus.FAILED:
            return ""
        return format_html('<a href="{}" class="compensate-task">{}</a>', compensate_link(task), gettext("补偿"))


class MemberAdmin(UserAdmin):
    inlines = (RecentTaskInline, LedgerInline)

    def get_formset_kwargs(self, request: HttpRequest, obj: Any, inline: Any, prefix: str) -> dict[str, Any]:
        kwargs: dict[str, Any] = super().get_formset_kwargs(request, obj, inline, prefix)
        if isinstance(inline, RecentTaskInline) and obj is not None:
            kwargs["queryset"] = with_refund(latest_rows(Task.objects.all(), obj, RECENT_TASK_ROWS))
        return kwargs


admin.site.unregister(User)
admin.site.register(User, MemberAdmin)
