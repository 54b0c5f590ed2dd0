"""Permission classes of the API."""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.views import APIView


class CanRunTaskActions(BasePermission):
    """Staff with the admin's task-action permission (SPEC §4: PUT /api/task/{id}/status)."""

    def has_permission(self, request: Request, view: APIView) -> bool:
        user: Any = request.user
        return bool(user and user.is_authenticated and user.is_staff and user.has_perm("tasks.run_task_actions"))
