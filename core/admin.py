from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.utils import timezone
from django.utils.formats import date_format


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
