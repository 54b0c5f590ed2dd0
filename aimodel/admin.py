from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from aimodel.models import PromptTemplate


@admin.register(PromptTemplate)
class PromptTemplateAdmin(admin.ModelAdmin):
    """One template per scene × category, seeded by a migration: they are edited, never added or
    removed, since processing needs every combination. Support may read them; superusers edit."""

    list_display = ("__str__", "scene", "category", "text", "updated_at")
    list_filter = ("scene", "category")
    search_fields = ("text",)
    readonly_fields = ("scene", "category", "updated_at")
    fields = ("scene", "category", "text", "updated_at")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
