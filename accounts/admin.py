from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet, Subquery
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone

from accounts.forms import QuotaChangeForm
from accounts.models import User
from core.admin import ReadOnlyAdminMixin
from quota.models import QuotaLedger

LEDGER_INLINE_ROWS = 50


class MembershipFilter(admin.SimpleListFilter):
    title = "会员状态"
    parameter_name = "membership"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("active", "有效会员"), ("expired", "已过期"), ("none", "非会员")]

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
    title = "配额"
    parameter_name = "quota"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("zero", "为 0"), ("positive", "大于 0")]

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
    verbose_name_plural = f"最近 {LEDGER_INLINE_ROWS} 条配额流水"
    fields = ("created_at", "kind", "delta", "balance_after", "task_id", "reason", "actor")
    readonly_fields = fields
    can_delete = False
    extra = 0


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    list_display = (
        "username",
        "phone",
        "membership",
        "quota_remaining",
        "quota_expire_at",
        "is_staff",
        "date_joined",
    )
    list_filter = (MembershipFilter, QuotaFilter, "is_member", "is_staff", "is_superuser", "groups")
    search_fields = ("username", "=phone")
    ordering = ("-date_joined",)
    inlines = (LedgerInline,)
    # Membership and quota change only through the grant / adjust form, which writes the ledger.
    readonly_fields = ("is_member", "quota_remaining", "quota_expire_at", "last_login", "date_joined")
    fieldsets = (
        (None, {"fields": ("username", "password")}),
        ("会员与配额", {"fields": ("phone", "is_member", "quota_remaining", "quota_expire_at")}),
        ("个人信息", {"fields": ("first_name", "last_name", "email")}),
        ("权限", {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")}),
        ("重要日期", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = (
        (None, {"classes": ("wide",), "fields": ("username", "phone", "usable_password", "password1", "password2")}),
    )

    @admin.display(description="会员", boolean=True)
    def membership(self, user: User) -> bool:
        return user.is_active_member

    def get_formset_kwargs(self, request: HttpRequest, obj: Any, inline: Any, prefix: str) -> dict[str, Any]:
        kwargs: dict[str, Any] = super().get_formset_kwargs(request, obj, inline, prefix)
        if isinstance(inline, LedgerInline) and obj is not None:
            # A subquery rather than a slice: the formset filters the queryset by user afterwards.
            latest = QuotaLedger.objects.filter(user=obj).order_by("-created_at", "-id").values("pk")
            kwargs["queryset"] = (
                QuotaLedger.objects.filter(pk__in=Subquery(latest[:LEDGER_INLINE_ROWS]))
                .select_related("actor")
                .order_by("-created_at", "-id")
            )
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
        form = QuotaChangeForm(request.POST if request.method == "POST" else None)
        if form.is_valid():
            row = form.save(user=user, actor=request.user)  # type: ignore[arg-type]
            if row is not None:
                change = f"{row.get_kind_display()} {row.delta:+d} 配额,余额 {row.balance_after}。原因:{row.reason}"
                self.log_change(request, user, change)
                self.message_user(request, f"已为 {user.username} {change}", messages.SUCCESS)
                return HttpResponseRedirect(reverse("admin:accounts_user_change", args=[user.pk]))
        context = {
            **self.admin_site.each_context(request),
            "title": f"发放 / 调整配额:{user.username}",
            "opts": self.opts,
            "original": user,
            "form": form,
        }
        return TemplateResponse(request, "admin/accounts/user/quota_form.html", context)


admin.site.site_header = "照片任务 · 客服后台"
admin.site.site_title = "客服后台"
admin.site.index_title = "客服控制台"
