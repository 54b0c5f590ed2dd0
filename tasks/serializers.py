from __future__ import annotations

from datetime import datetime
from typing import Any

from rest_framework import serializers

from media.storage import get_storage
from tasks.models import Task


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def task_payload(task: Task) -> dict[str, Any]:
    storage = get_storage()
    return {
        "id": str(task.id),
        "type": task.type,
        "status": task.status,
        "inputImageUrl": task.input_image_url,
        "params": task.params,
        "resultUrls": [storage.signed(url) for url in task.result_urls],
        "errorMessage": task.error_message or None,
        "createdAt": _iso(task.created_at),
        "updatedAt": _iso(task.updated_at),
        "startedAt": _iso(task.started_at),
        "completedAt": _iso(task.completed_at),
        "quotaCharged": task.cost,
        "quotaRefunded": getattr(task, "quota_refunded", 0),
    }


class TaskSerializer(serializers.Serializer[Any]):
    """Schema of task_payload for the OpenAPI document."""

    id = serializers.UUIDField()
    type = serializers.ChoiceField(choices=["basic_clean", "model_pose12"])
    status = serializers.ChoiceField(choices=["pending", "processing", "success", "failed"])
    inputImageUrl = serializers.CharField()
    params = serializers.DictField()
    resultUrls = serializers.ListField(child=serializers.CharField())
    errorMessage = serializers.CharField(allow_null=True)
    createdAt = serializers.DateTimeField()
    updatedAt = serializers.DateTimeField()
    startedAt = serializers.DateTimeField(allow_null=True)
    completedAt = serializers.DateTimeField(allow_null=True)
    quotaCharged = serializers.IntegerField()
    quotaRefunded = serializers.IntegerField()


class TaskCreateSerializer(serializers.Serializer[Any]):
    type = serializers.CharField()
    inputImageUrl = serializers.CharField()
    params = serializers.DictField(required=False)


class TaskListSerializer(serializers.Serializer[Any]):
    tasks = TaskSerializer(many=True)
    total = serializers.IntegerField()
    limit = serializers.IntegerField()
    offset = serializers.IntegerField()


class TaskListQuery(serializers.Serializer[Any]):
    limit = serializers.IntegerField(min_value=1, max_value=100, default=10)
    offset = serializers.IntegerField(min_value=0, default=0)
    # Blank is allowed here so that `?status=` reaches task_list and is refused there as unknown.
    status = serializers.CharField(required=False, allow_blank=True)
    type = serializers.CharField(required=False, allow_blank=True)


class StatusUpdateSerializer(serializers.Serializer[Any]):
    status = serializers.CharField()
    resultUrls = serializers.ListField(child=serializers.CharField(), required=False)
    errorMessage = serializers.CharField(required=False)
