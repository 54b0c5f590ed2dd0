from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from accounts.models import User
from core.admin import ReadOnlyAdminMixin, task_admin_link, to_the_second
from quota.models import QuotaLedger


class UserFilter(admin.SimpleListFilter):
    """Filter by one user, reached from the user's page or a row's user link: listing every
    user as a choice would not scale."""

    title = _("用户")
    parameter_name = "user"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        value = self.value()
        if not value or not value.isdigit():
            return []
        return [(str(pk), name) for pk, name in User.objects.filter(pk=value).values_list("pk", "username")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[QuotaLedger]) -> QuerySet[QuotaLedger]:
        value = self.value()
        if value and value.isdigit():
            return queryset.filter(user_id=value)
        return queryset


@admin.register(QuotaLedger)
class QuotaLedgerAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Append-only: nobody adds, changes or deletes rows here; quota moves through the services."""

    list_display = ("time", "user_link", "kind", "change", "balance_after", "task_link", "reason", "actor")
    list_filter = ("kind", UserFilter, "created_at")
    list_select_related = ("user", "actor")
    search_fields = ("user__username", "=user__phone", "reason")
    date_hierarchy = "created_at"
    # The ledger grows without end; a second COUNT over all of it on every page is not worth it.
    show_full_result_count = False

    @admin.display(description=_("时间"), ordering="created_at")
    def time(self, row: QuotaLedger) -> str:
        return to_the_second(row.created_at)

    @admin.display(description=_("变动"), ordering="delta")
    def change(self, row: QuotaLedger) -> str:
        return f"{row.delta:+d}"

    @admin.display(description=_("用户"), ordering="user__username")
    def user_link(self, row: QuotaLedger) -> str:
        return format_html('<a href="?user={}">{}</a>', row.user_id, row.user.username)

    @admin.display(description=_("任务"))
    def task_link(self, row: QuotaLedger) -> str:
        return task_admin_link(row.task_id)
