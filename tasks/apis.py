"""The task API (SPEC §4) as one viewset, plus RunningHub's callback."""

from __future__ import annotations

import builtins
import hmac
import uuid
from typing import Any

from django.conf import settings
from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, viewsets
from rest_framework import status as http
from rest_framework.decorators import action
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import BaseThrottle

from accounts.auth import request_user
from aimodel.runninghub import parse_webhook
from core import errors
from core.permissions import CanRunTaskActions
from core.schema import AUTHENTICATED, error_responses
from core.serializers import parse
from core.throttling import ScopedThrottle
from tasks.actions import task_cancel, task_member_retry, task_update_status
from tasks.archive import task_archive
from tasks.creation import TaskOrder, task_batch_create, task_create
from tasks.models import Task, TaskStatus
from tasks.progress import task_progress
from tasks.queue import enqueue_advance
from tasks.selectors import task_get, task_get_when_changed, task_list
from tasks.serializers import (
    TaskBatchIn,
    TaskBatchOut,
    TaskCreateIn,
    TaskGetIn,
    TaskListIn,
    TaskListOut,
    TaskOut,
    TaskStatusIn,
)

IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key",
    str,
    OpenApiParameter.HEADER,
    required=False,
    description="Repeating a request with the same key and body within 24 h answers with the first task",
)
# What ordering can answer, for a single task or a batch.
ORDER_ERRORS = (
    errors.InvalidTaskType,
    errors.InvalidParams,
    errors.MembershipRequired,
    errors.QuotaInsufficient,
    errors.IdempotencyConflict,
    errors.RateLimited,
)
TASK_ID = OpenApiParameter("task_id", OpenApiTypes.UUID, OpenApiParameter.PATH)


def _idempotency_key(request: Request) -> str | None:
    key = request.headers.get("Idempotency-Key", "").strip() or None
    if key is not None and (len(key) > 255 or not key.isprintable()):
        raise errors.InvalidParams(fields={"Idempotency-Key": ["最长 255 个可见字符"]})
    return key


def _task_id(value: str) -> uuid.UUID:
    """Ids that are not UUIDs name no task (4004, like an unknown one)."""
    try:
        return uuid.UUID(value)
    except ValueError:
        raise errors.TaskNotFound() from None


class TaskViewSet(viewsets.ViewSet):
    permission_classes = [IsAuthenticated]
    throttle_classes = [ScopedThrottle]
    lookup_url_kwarg = "task_id"
    lookup_value_regex = "[^/]+"

    @extend_schema(
        operation_id="task_create",
        summary="Order a job (charges its quota)",
        request=TaskCreateIn,
        parameters=[IDEMPOTENCY_KEY],
        responses={
            201: TaskOut,
            **error_responses(*AUTHENTICATED, *ORDER_ERRORS),
        },
    )
    def create(self, request: Request) -> Response:
        data = parse(TaskCreateIn, request.data)
        created = task_create(
            user=request_user(request),
            task_type=data["type"],
            input_image_url=data["inputImageUrl"],
            params=data["params"],
            idempotency_key=_idempotency_key(request),
        )
        response = Response(TaskOut(created.task).data, status=http.HTTP_201_CREATED)
        if created.replayed:
            response["Idempotent-Replayed"] = "true"
        return response

    @extend_schema(
        operation_id="task_list",
        summary="The member's tasks, newest first",
        parameters=[TaskListIn],
        responses={200: TaskListOut, **error_responses(*AUTHENTICATED, errors.InvalidParams)},
    )
    def list(self, request: Request) -> Response:
        query = TaskListIn(data=request.query_params)
        query.is_valid(raise_exception=True)
        params = query.validated_data
        page = task_list(
            user=request_user(request),
            limit=params["limit"],
            offset=params["offset"],
            status=params.get("status"),
            task_type=params.get("type"),
            after=params.get("after"),
            batch_id=params.get("batchId"),
        )
        body = {"tasks": page.tasks, "total": page.total, "next_after": page.next_after}
        answer = TaskListOut(
            {**body, "limit": params["limit"], "offset": params["offset"]},
            context={"progress": task_progress(page.tasks)},
        )
        return Response(answer.data)

    @extend_schema(
        operation_id="task_get",
        summary="One of the member's tasks",
        parameters=[TASK_ID, TaskGetIn],
        responses={
            200: TaskOut,
            **error_responses(*AUTHENTICATED, errors.InvalidParams, errors.TaskForbidden, errors.TaskNotFound),
        },
    )
    def retrieve(self, request: Request, task_id: str) -> Response:
        query = TaskGetIn(data=request.query_params)
        query.is_valid(raise_exception=True)
        user, pk = request_user(request), _task_id(task_id)
        wait = query.validated_data.get("wait")
        if wait is None:
            return Response(TaskOut(task_get(task_id=pk, user=user)).data)
        return Response(TaskOut(task_get_when_changed(task_id=pk, user=user, wait=wait)).data)

    @extend_schema(
        operation_id="task_batch",
        summary="Order up to 50 jobs at once: all charged and created, or none",
        request=TaskBatchIn,
        parameters=[IDEMPOTENCY_KEY],
        responses={
            201: TaskBatchOut,
            **error_responses(*AUTHENTICATED, *ORDER_ERRORS),
        },
    )
    @action(detail=False, methods=["post"])
    def batch(self, request: Request) -> Response:
        items = parse(TaskBatchIn, request.data)["items"]
        orders = [
            TaskOrder(task_type=item["type"], input_image_url=item["inputImageUrl"], params=item["params"])
            for item in items
        ]
        created = task_batch_create(
            user=request_user(request), orders=orders, idempotency_key=_idempotency_key(request)
        )
        response = Response(TaskBatchOut(created).data, status=http.HTTP_201_CREATED)
        if created.replayed:
            response["Idempotent-Replayed"] = "true"
        return response

    @extend_schema(
        operation_id="task_retry",
        summary="Order a failed task again as a new task (charged like any order)",
        request=None,
        parameters=[TASK_ID, IDEMPOTENCY_KEY],
        responses={
            201: TaskOut,
            **error_responses(
                *AUTHENTICATED,
                errors.TaskForbidden,
                errors.TaskNotFound,
                errors.InvalidTransition,
                errors.InvalidParams,
                errors.MembershipRequired,
                errors.QuotaInsufficient,
                errors.RateLimited,
            ),
        },
    )
    @action(detail=True, methods=["post"])
    def retry(self, request: Request, task_id: str) -> Response:
        task = task_member_retry(
            task_id=_task_id(task_id), user=request_user(request), idempotency_key=_idempotency_key(request)
        )
        return Response(TaskOut(task).data, status=http.HTTP_201_CREATED)

    @extend_schema(
        operation_id="task_archive",
        summary="The stored results of a successful task as one ZIP",
        parameters=[TASK_ID],
        responses={
            (200, "application/zip"): OpenApiResponse(OpenApiTypes.BINARY, description="One file per result, in order"),
            **error_responses(*AUTHENTICATED, errors.TaskForbidden, errors.TaskNotFound, errors.InvalidTransition),
        },
    )
    @action(detail=True, methods=["get"])
    def archive(self, request: Request, task_id: str) -> StreamingHttpResponse:
        task = task_get(task_id=_task_id(task_id), user=request_user(request))
        response = StreamingHttpResponse(task_archive(task=task), content_type="application/zip")
        response["Content-Disposition"] = f'attachment; filename="{task.id.hex[:8]}.zip"'
        return response

    @extend_schema(
        operation_id="task_cancel",
        summary="Cancel a pending or processing task (refunds it)",
        request=None,
        parameters=[TASK_ID],
        responses={
            200: TaskOut,
            **error_responses(*AUTHENTICATED, errors.TaskForbidden, errors.TaskNotFound, errors.InvalidTransition),
        },
    )
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, task_id: str) -> Response:
        return Response(TaskOut(task_cancel(task_id=_task_id(task_id), user=request_user(request))).data)

    @extend_schema(
        operation_id="task_set_status",
        summary="Staff: force a task's status (failing refunds it)",
        request=TaskStatusIn,
        parameters=[TASK_ID],
        responses={
            200: TaskOut,
            **error_responses(
                *AUTHENTICATED, errors.InvalidParams, errors.Forbidden, errors.TaskNotFound, errors.InvalidTransition
            ),
        },
    )
    @action(detail=True, methods=["put"], url_path="status", permission_classes=[CanRunTaskActions])
    def set_status(self, request: Request, task_id: str) -> Response:
        data = parse(TaskStatusIn, request.data)
        task = task_update_status(
            task_id=_task_id(task_id),
            status=TaskStatus(data["status"]),
            actor=request_user(request),
            result_urls=data.get("resultUrls"),
            error_message=data.get("errorMessage"),
        )
        return Response(TaskOut(task).data)

    def get_throttles(self) -> builtins.list[BaseThrottle]:
        # Only ordering is throttled per member (ScopedThrottle skips views without a scope).
        if self.action in ("create", "batch", "retry"):
            self.throttle_scope = "task_create"
        return super().get_throttles()


WebhookReceived = inline_serializer("WebhookReceived", {"received": serializers.BooleanField()})


class RunningHubWebhookViewSet(viewsets.ViewSet):
    """RunningHub's callback. It carries no signature, so the URL holds a secret (`?token=`) and
    the body is only a hint: the worker confirms with /task/openapi/outputs before anything changes."""

    permission_classes = [AllowAny]
    authentication_classes: list[Any] = []

    @extend_schema(
        operation_id="webhook_runninghub",
        summary="RunningHub task-finished callback",
        request=OpenApiTypes.OBJECT,
        parameters=[OpenApiParameter("token", str, OpenApiParameter.QUERY, required=True)],
        responses={
            200: OpenApiResponse(WebhookReceived),
            **error_responses(errors.InvalidParams, errors.Forbidden),
        },
        auth=[],
    )
    @action(detail=False, methods=["post"])
    def runninghub(self, request: Request) -> Response:
        token = request.query_params.get("token", "")
        if not hmac.compare_digest(token.encode(), settings.RUNNINGHUB_WEBHOOK_SECRET.encode()):
            raise errors.Forbidden()
        try:
            vendor_task_id = parse_webhook(request.body)
        except ValueError as exc:
            raise errors.InvalidParams(fields={"body": [str(exc)]}) from exc
        task = (
            Task.objects.filter(vendor_task_id=vendor_task_id, status=TaskStatus.PROCESSING).only("id", "type").first()
        )
        if task is not None:
            enqueue_advance(task_id=task.pk, task_type=task.type, due=None)
        return Response({"received": True})
