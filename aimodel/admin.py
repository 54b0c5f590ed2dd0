from __future__ import annotations

from typing import Any, cast

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.forms import ModelForm
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST

from aimodel.models import PromptTemplate, PromptTemplateVersion
from aimodel.services import prompt_template_restore, prompt_template_update
from core.admin import ReadOnlyAdminMixin, to_the_second


class VersionInline(ReadOnlyAdminMixin, admin.TabularInline):
    """Every saved text, newest first; a superuser can put one back."""

    model = PromptTemplateVersion
    fk_name = "template"
    template = "admin/edit_inline/readonly_tabular.html"
    verbose_name_plural = _("历史版本")
    empty_text = _("还没有编辑过")
    fields = ("time", "editor", "text", "restored", "restore")
    readonly_fields = fields
    can_delete = False
    extra = 0

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Whoever reads a template reads its history; no permission of its own to hand out.
        return request.user.has_perm("aimodel.view_prompttemplate")

    def get_queryset(self, request: HttpRequest) -> Any:
        return super().get_queryset(request).select_related("editor", "restored_from")

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return self.fields if request.user.is_superuser else self.fields[:-1]

    @admin.display(description=_("时间"))
    def time(self, version: PromptTemplateVersion) -> str:
        return to_the_second(version.created_at)

    @admin.display(description=_("恢复自"))
    def restored(self, version: PromptTemplateVersion) -> str:
        if version.restored_from is None:
            return "-"
        return to_the_second(version.restored_from.created_at)

    @admin.display(description=_("恢复"))
    def restore(self, version: PromptTemplateVersion) -> str:
        url = reverse("admin:aimodel_prompttemplate_restore", args=[version.template_id, version.pk])
        # A button of the page's own form (which carries the CSRF token) posting elsewhere: forms
        # cannot nest.
        return format_html(
            '<button type="submit" formaction="{}" formnovalidate class="restore-version">{}</button>',
            url,
            gettext("恢复此版本"),
        )


@admin.register(PromptTemplate)
class PromptTemplateAdmin(admin.ModelAdmin):
    """One template per scene × category, seeded by a migration: they are edited, never added or
    removed, since processing needs every combination. Support may read them; superusers edit,
    and every edit is kept as a version that a superuser can restore."""

    list_display = ("__str__", "scene", "category", "text", "updated_at")
    list_filter = ("scene", "category")
    search_fields = ("text",)
    readonly_fields = ("scene", "category", "updated_at")
    fields = ("scene", "category", "text", "updated_at")
    inlines = (VersionInline,)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: PromptTemplate, form: ModelForm, change: bool) -> None:
        # Only logged-in staff reach the admin's views: the editor has an id.
        prompt_template_update(template=obj, text=obj.text, editor_id=cast(int, request.user.pk))

    def get_urls(self) -> list[URLPattern]:
        restore = path(
            "<int:template_id>/restore/<int:version_id>/",
            self.admin_site.admin_view(require_POST(self.restore_view)),
            name="aimodel_prompttemplate_restore",
        )
        return [restore, *super().get_urls()]

    def restore_view(self, request: HttpRequest, template_id: int, version_id: int) -> HttpResponse:
        if not request.user.is_superuser:
            raise PermissionDenied
        version = get_object_or_404(PromptTemplateVersion, pk=version_id, template_id=template_id)
        restored = prompt_template_restore(version_id=version.pk, editor_id=cast(int, request.user.pk))
        moment = to_the_second(version.created_at)
        message = gettext("已恢复 %(time)s 的版本") % {"time": moment}
        self.log_change(request, restored.template, message)
        self.message_user(request, message)
        return HttpResponseRedirect(reverse("admin:aimodel_prompttemplate_change", args=[template_id]))
