"""The task API's shapes: input serializers that hand typed values to the services, and the one
output serializer that is both the payload and its schema."""

from __future__ import annotations

import datetime
import uuid
from typing import Any

from django.db.models import Field
from drf_spectacular.utils import extend_schema_field, extend_schema_serializer
from rest_framework import serializers

from aimodel.models import Category, Scene
from aimodel.types import Pose12Params
from core import errors
from core.serializers import StrictCharField, UtcDateTimeField
from media.storage import get_storage
from tasks.models import FailureCode, Task, TaskStage, TaskStatus, TaskType
from tasks.progress import Progress, task_progress


def _field_label(name: str) -> Any:
    field = Task._meta.get_field(name)
    assert isinstance(field, Field)
    return field.verbose_name


# A task as members and staff see it. Every field is declared: a plain Serializer does no model
# introspection per answer, which halves the cost of serializing a task.
class TaskOut(serializers.Serializer[Task]):
    id = serializers.UUIDField(read_only=True)
    type = serializers.ChoiceField(choices=TaskType.choices, label=_field_label("type"), read_only=True)
    status = serializers.ChoiceField(choices=TaskStatus.choices, label=_field_label("status"), read_only=True)
    inputImageUrl = serializers.CharField(source="input_image_url", read_only=True)
    params = serializers.JSONField(label=_field_label("params"), read_only=True)
    resultUrls = serializers.SerializerMethodField()
    errorMessage = serializers.SerializerMethodField()
    failureCode = serializers.SerializerMethodField()
    createdAt = UtcDateTimeField(source="created_at", read_only=True)
    updatedAt = UtcDateTimeField(source="updated_at", read_only=True)
    startedAt = UtcDateTimeField(source="started_at", allow_null=True, read_only=True)
    completedAt = UtcDateTimeField(source="completed_at", allow_null=True, read_only=True)
    quotaCharged = serializers.IntegerField(source="cost", read_only=True)
    quotaRefunded = serializers.SerializerMethodField()
    stage = serializers.ChoiceField(choices=TaskStage.choices, read_only=True)
    queuePosition = serializers.SerializerMethodField()
    estimatedStartAt = serializers.SerializerMethodField()
    estimatedDoneAt = serializers.SerializerMethodField()
    batchId = serializers.UUIDField(source="batch_id", allow_null=True, read_only=True)
    retryOf = serializers.UUIDField(source="retry_of_id", allow_null=True, read_only=True)

    @extend_schema_field(serializers.ListField(child=serializers.URLField()))
    def get_resultUrls(self, task: Task) -> list[str]:
        # A private bucket's files get a fresh signature each time they are handed out.
        storage = get_storage()
        return [storage.signed(url) for url in task.result_urls]

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_errorMessage(self, task: Task) -> str | None:
        return task.error_message or None

    @extend_schema_field(serializers.ChoiceField(choices=FailureCode.choices, allow_null=True))
    def get_failureCode(self, task: Task) -> str | None:
        return task.failure_code or None

    def _progress(self, task: Task) -> Progress:
        """A list passes the progress of all its tasks in the context (worked out in one go);
        a single task works out its own."""
        context: dict[str, Any] = self.context  # type: ignore[assignment]
        known: dict[uuid.UUID, Progress] = context.setdefault("progress", {})
        if task.id not in known:
            known.update(task_progress([task]))
        return known.get(task.id, Progress())

    @extend_schema_field(serializers.IntegerField(min_value=1, allow_null=True))
    def get_queuePosition(self, task: Task) -> int | None:
        return self._progress(task).queue_position

    @extend_schema_field(UtcDateTimeField(allow_null=True))
    def get_estimatedStartAt(self, task: Task) -> str | None:
        at = self._progress(task).estimated_start_at
        return at.astimezone(datetime.UTC).isoformat() if at else None

    @extend_schema_field(UtcDateTimeField(allow_null=True))
    def get_estimatedDoneAt(self, task: Task) -> str | None:
        at = self._progress(task).estimated_done_at
        return at.astimezone(datetime.UTC).isoformat() if at else None

    @extend_schema_field(serializers.IntegerField())
    def get_quotaRefunded(self, task: Task) -> int:
        return int(getattr(task, "quota_refunded", 0))

    def to_representation(self, task: Task) -> dict[str, Any]:
        """The declared fields' values, written out: DRF's generic walk first deep-copies the
        serializer's twenty fields, about a third of a millisecond on every single-task answer (a
        test holds the two equal for tasks in every state)."""
        progress = self._progress(task)
        return {
            "id": str(task.id),
            "type": str(task.type),
            "status": str(task.status),
            "inputImageUrl": task.input_image_url,
            "params": task.params,
            "resultUrls": self.get_resultUrls(task),
            "errorMessage": task.error_message or None,
            "failureCode": task.failure_code or None,
            "createdAt": _utc(task.created_at),
            "updatedAt": _utc(task.updated_at),
            "startedAt": _utc(task.started_at),
            "completedAt": _utc(task.completed_at),
            "quotaCharged": int(task.cost),
            "quotaRefunded": self.get_quotaRefunded(task),
            "stage": str(task.stage),
            "queuePosition": progress.queue_position,
            "estimatedStartAt": _utc(progress.estimated_start_at),
            "estimatedDoneAt": _utc(progress.estimated_done_at),
            "batchId": str(task.batch_id) if task.batch_id else None,
            "retryOf": str(task.retry_of_id) if task.retry_of_id else None,
        }


def _utc(at: datetime.datetime | None) -> str | None:
    return at.astimezone(datetime.UTC).isoformat() if at else None


# One object although the viewset action is `list` (which drf-spectacular would show as an array).
@extend_schema_serializer(many=False)
class TaskListOut(serializers.Serializer[Any]):
    tasks = TaskOut(many=True)
    total = serializers.IntegerField()
    limit = serializers.IntegerField()
    offset = serializers.IntegerField()
    nextAfter = serializers.UUIDField(
        source="next_after", allow_null=True, help_text="Pass as `after` for the next page; null on the last page"
    )


class TaskTypeField(serializers.ChoiceField):
    """A type outside the list is 4001 (SPEC §2), not the generic 4002."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(choices=TaskType.choices, **kwargs)

    def run_validation(self, data: Any = serializers.empty) -> Any:
        try:
            return super().run_validation(data)
        except serializers.ValidationError as exc:
            raise errors.InvalidTaskType() from exc


class Pose12ParamsIn(serializers.Serializer[Any]):
    scene = serializers.ChoiceField(choices=Scene.choices, default=Scene.STREET)
    category = serializers.ChoiceField(choices=Category.choices, default=Category.DRESS)


class TaskCreateIn(serializers.Serializer[Any]):
    type = TaskTypeField()
    inputImageUrl = StrictCharField(max_length=2048)
    params = serializers.JSONField(
        required=False, allow_null=True, help_text="model_pose12: {scene, category}; basic_clean: none"
    )

    class Meta:
        ref_name = "TaskCreate"

    def validate_params(self, params: Any) -> Any:
        if params is not None and not isinstance(params, dict):
            raise serializers.ValidationError("必须是对象")
        return params or {}

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        params: dict[str, Any] = attrs.get("params") or {}
        if attrs["type"] == TaskType.BASIC_CLEAN:
            if params:
                raise errors.InvalidParams(fields={"params": [f"不支持的参数: {', '.join(sorted(map(str, params)))}"]})
            attrs["params"] = {}
            return attrs
        unknown = set(params) - set(Pose12ParamsIn().fields)
        if unknown:
            raise errors.InvalidParams(fields={"params": [f"不支持的参数: {', '.join(sorted(map(str, unknown)))}"]})
        checked = Pose12ParamsIn(data=params)
        if not checked.is_valid():
            raise errors.InvalidParams(
                fields={f"params.{name}": [str(m) for m in messages] for name, messages in checked.errors.items()}
            )
        attrs["params"] = Pose12Params(**checked.validated_data).as_dict()
        return attrs


class TaskListIn(serializers.Serializer[Any]):
    limit = serializers.IntegerField(min_value=1, max_value=100, default=10)
    offset = serializers.IntegerField(min_value=0, default=0)
    after = serializers.UUIDField(
        required=False,
        help_text="Keyset paging: the page starts just after this task (the `nextAfter` of the previous "
        "page); unlike a deep `offset`, it costs the same at any depth",
    )
    status = serializers.ChoiceField(choices=TaskStatus.choices, required=False)
    type = serializers.ChoiceField(choices=TaskType.choices, required=False)
    batchId = serializers.UUIDField(required=False, help_text="Only the tasks of this batch (POST /api/task/batch)")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        # A query string's blank value would otherwise be dropped silently: `?status=` is refused.
        blank = {
            name: ["不能为空"] for name in ("status", "type", "batchId", "after") if self.initial_data.get(name) == ""
        }
        if blank:
            raise serializers.ValidationError(blank)
        return attrs


class TaskStatusIn(serializers.Serializer[Any]):
    status = serializers.ChoiceField(choices=TaskStatus.choices)
    resultUrls = serializers.ListField(child=StrictCharField(max_length=2048), required=False, max_length=50)
    errorMessage = StrictCharField(required=False, max_length=500)

    def validate_resultUrls(self, urls: list[str]) -> list[str]:
        storage = get_storage()
        if any(storage.key_for_url(url) is None for url in urls):
            raise serializers.ValidationError("只接受本服务存储中的文件地址")
        return urls


class TaskGetIn(serializers.Serializer[Any]):
    wait = serializers.FloatField(
        required=False,
        min_value=0.001,
        max_value=25,
        help_text="Long poll: answer as soon as the task's status or stage changes, or after this many seconds",
    )


class TaskBatchIn(serializers.Serializer[Any]):
    items = serializers.ListField(child=serializers.JSONField(), min_length=1, max_length=50)

    def validate_items(self, items: list[Any]) -> list[dict[str, Any]]:
        """Each item is checked like a single create; an error names its item (`items[<i>].…`)."""
        orders = []
        for index, item in enumerate(items):
            prefix = f"items[{index}]"
            if not isinstance(item, dict):
                raise errors.InvalidParams(fields={prefix: ["必须是对象"]})
            checked = TaskCreateIn(data=item)
            try:
                valid = checked.is_valid()
            except errors.ApplicationError as exc:
                fields = exc.fields or {"type": [exc.message("zh")]}
                raise type(exc)(fields={f"{prefix}.{name}": text for name, text in fields.items()}) from exc
            if not valid:
                raise errors.InvalidParams(
                    fields={f"{prefix}.{name}": [str(m) for m in messages] for name, messages in checked.errors.items()}
                )
            orders.append(checked.validated_data)
        return orders


class TaskBatchOut(serializers.Serializer[Any]):
    batchId = serializers.UUIDField(source="batch_id")
    tasks = TaskOut(many=True)
