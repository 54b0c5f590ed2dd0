from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html


def task_admin_link(task_id: Any) -> str:
    """A task's short id linking to its admin page; tasks are named by id everywhere in the console."""
    if task_id is None:
        return "-"
    url = reverse("admin:tasks_task_change", args=[task_id])
    return format_html('<a href="{}">{}</a>', url, str(task_id)[:8])


def to_the_second(moment: Any) -> str:
    """A time as support reads it in lists and inlines: local, to the second."""
    return "-" if moment is None else date_format(timezone.localtime(moment), "Y-m-d H:i:s")


class ReadOnlyAdminMixin:
    """For admin pages and inlines that only show rows: the ledger is append-only, and tasks and
    their history change only through the services (the admin's actions call them)."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
