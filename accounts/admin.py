from __future__ import annotations

from typing import Any, ClassVar

from django.contrib import admin
from django.contrib.admin.options import InlineModelAdmin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet, Subquery
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.text import format_lazy
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from accounts.forms import COMPENSATE, AdminLoginForm, QuotaChangeForm
from accounts.models import User
from core.admin import ReadOnlyAdminMixin, task_admin_link, to_the_second
from quota.models import QuotaLedger

LEDGER_INLINE_ROWS = 50
# The top of the member page: who the member is and what they have.
MEMBER_FIELDS = ("username", "phone", "membership_status", "quota_remaining", "quota_expire_at")


class MembershipFilter(admin.SimpleListFilter):
    title = _("会员状态")
    parameter_name = "membership"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [("active", _("有效会员")), ("expired", _("已过期")), ("none", _("非会员"))]

    def queryset(self, request: HttpRequest, queryset: QuerySet[User]) -> QuerySet[User]:
        now = timezone.now()
        if self.value() == "active":
            return queryset.filter(Q(quota_expire_at__isnull=True) | Q(quota_expire_at__gt=now), is_member=True)
        if self.value() == "expired":
            return queryset.filter(is_member=True, quota_expire_at__lte=now)
        if self.value() == "none":
            return queryset.filter(is_member=False)
        return queryset


class QuotaFilter(admin.SimpleListFilter):
    title = _("配额")
    parameter_name = "quota"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [("zero", _("为 0")), ("positive", _("大于 0"))]

    def queryset(self, request: HttpRequest, queryset: QuerySet[User]) -> QuerySet[User]:
        if self.value() == "zero":
            return queryset.filter(quota_remaining=0)
        if self.value() == "positive":
            return queryset.filter(quota_remaining__gt=0)
        return queryset


class LedgerInline(ReadOnlyAdminMixin, admin.TabularInline):
    """The member's latest ledger rows; the full history is one click away in the ledger list."""

    model = QuotaLedger
    fk_name = "user"
    template = "admin/edit_inline/readonly_tabular.html"
    verbose_name_plural = format_lazy(_("最近 {rows} 条配额流水"), rows=LEDGER_INLINE_ROWS)
    empty_text = _("没有配额流水")
    fields = ("time", "kind", "change", "balance_after", "reason", "task_link", "actor")
    readonly_fields = fields
    can_delete = False
    extra = 0

    @admin.display(description=_("时间"))
    def time(self, row: QuotaLedger) -> str:
        return to_the_second(row.created_at)

    @admin.display(description=_("变动"))
    def change(self, row: QuotaLedger) -> str:
        return f"{row.delta:+d}"

    @admin.display(description=_("任务"))
    def task_link(self, row: QuotaLedger) -> str:
        return task_admin_link(row.task_id)


def latest_rows(queryset: QuerySet[Any], owner: Any, rows: int) -> QuerySet[Any]:
    """An inline's latest rows. A subquery rather than a slice: the formset filters the queryset
    by its owner afterwards, which a sliced queryset refuses."""
    latest = queryset.filter(user=owner).order_by("-created_at").values("pk")[:rows]
    return queryset.filter(pk__in=Subquery(latest)).order_by("-created_at")


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    """The member page is support's hub: who the member is and what they have, their latest tasks
    (the tasks app adds that inline) and their ledger. Accounts and roles are the superusers'."""

    list_display = (
        "username",
        "phone",
        "membership",
        "quota_remaining",
        "quota_expire_at",
        "is_staff",
        "date_joined",
    )
    # One member filter: MembershipFilter also tells lapsed members from active ones.
    list_filter = (MembershipFilter, QuotaFilter, "is_staff", "is_superuser", "groups")
    search_fields = ("username", "=phone")
    ordering = ("-date_joined",)
    inlines: ClassVar[tuple[type[InlineModelAdmin[Any, Any]], ...]] = (LedgerInline,)
    # Membership and quota change only through the quota form, which writes the ledger.
    readonly_fields = (
        "membership_status",
        "is_member",
        "quota_remaining",
        "quota_expire_at",
        "last_login",
        "date_joined",
    )
    fieldsets = (
        (_("会员与配额"), {"fields": MEMBER_FIELDS}),
        (_("账号"), {"fields": ("password", "first_name", "last_name", "email")}),
        (_("权限"), {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")}),
        (_("重要日期"), {"fields": ("last_login", "date_joined")}),
    )
    # Support sees who the member is and what they have; the tasks and the ledger follow at once.
    support_fieldsets = ((_("会员与配额"), {"fields": (*MEMBER_FIELDS, "date_joined", "last_login")}),)
    add_fieldsets = (
        (None, {"classes": ("wide",), "fields": ("username", "phone", "usable_password", "password1", "password2")}),
    )

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is not None and not request.user.is_superuser:
            return self.support_fieldsets
        return super().get_fieldsets(request, obj)

    @admin.display(description=_("会员"), boolean=True)
    def membership(self, user: User) -> bool:
        return user.is_active_member

    @admin.display(description=_("会员状态"))
    def membership_status(self, user: User) -> str:
        if user.is_active_member:
            return gettext("有效会员")
        if user.is_member:
            return gettext("已过期")
        return gettext("非会员")

    def get_formset_kwargs(self, request: HttpRequest, obj: Any, inline: Any, prefix: str) -> dict[str, Any]:
        kwargs: dict[str, Any] = super().get_formset_kwargs(request, obj, inline, prefix)
        if isinstance(inline, LedgerInline) and obj is not None:
            rows = latest_rows(QuotaLedger.objects.select_related("actor"), obj, LEDGER_INLINE_ROWS)
            kwargs["queryset"] = rows.order_by("-created_at", "-id")
        return kwargs

    def get_urls(self) -> list[URLPattern]:
        quota = path("<int:user_id>/quota/", self.admin_site.admin_view(self.quota_view), name="accounts_user_quota")
        return [quota, *super().get_urls()]

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        extra_context = {**(extra_context or {}), "can_adjust_quota": request.user.has_perm("accounts.adjust_quota")}
        return super().change_view(request, object_id, form_url, extra_context)

    def quota_view(self, request: HttpRequest, user_id: int) -> HttpResponse:
        if not request.user.has_perm("accounts.adjust_quota"):
            raise PermissionDenied
        user = get_object_or_404(User, pk=user_id)
        # A link from a task ("compensate this task") arrives with the choice and the task filled in.
        initial = {name: request.GET[name] for name in ("operation", "task") if name in request.GET}
        form = QuotaChangeForm(request.POST if request.method == "POST" else None, user=user, initial=initial)
        if form.is_valid():
            row = form.save(actor=request.user)  # type: ignore[arg-type]
            if row is not None:
                change = gettext("%(kind)s %(delta)+d 配额,余额 %(balance)d。原因:%(reason)s") % {
                    "kind": row.get_kind_display(),
                    "delta": row.delta,
                    "balance": row.balance_after,
                    "reason": row.reason,
                }
                if row.task_id:
                    change += " " + gettext("(任务 %(task)s)") % {"task": row.task_id}
                self.log_change(request, user, change)
                self.message_user(
                    request, gettext("已为 %(user)s %(change)s") % {"user": user.username, "change": change}
                )
                return HttpResponseRedirect(reverse("admin:accounts_user_change", args=[user.pk]))
        context = {
            **self.admin_site.each_context(request),
            "title": gettext("发放 / 调整 / 补偿配额:%(user)s") % {"user": user.username},
            "opts": self.opts,
            "original": user,
            "form": form,
            "compensate": COMPENSATE,
        }
        return TemplateResponse(request, "admin/accounts/user/quota_form.html", context)


admin.site.login_form = AdminLoginForm
admin.site.site_header = _("照片任务 · 客服后台")
admin.site.site_title = _("客服后台")
admin.site.index_title = _("客服控制台")
# The product has no web site besides the API and this console: no "view site" link.
admin.site.site_url = None
