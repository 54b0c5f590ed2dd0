from __future__ import annotations

import hmac
import logging
from typing import Any

from django.conf import settings
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status as http
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import User
from aimodel.runninghub import parse_webhook
from core import errors
from core.throttling import UserRateThrottle
from tasks.models import Task, TaskStatus
from tasks.selectors import task_get, task_list
from tasks.serializers import (
    StatusUpdateSerializer,
    TaskCreateSerializer,
    TaskListQuery,
    TaskListSerializer,
    TaskSerializer,
    task_payload,
)
from tasks.services import enqueue_advance, task_cancel, task_create, task_update_status

logger = logging.getLogger(__name__)


def _body(request: Request) -> dict[str, Any]:
    if not isinstance(request.data, dict):
        raise errors.InvalidParams(fields={"body": ["必须是 JSON 对象"]})
    return request.data


class TaskCreateApi(APIView):
    throttle_classes = [UserRateThrottle]
    throttle_scope = "task_create"

    @extend_schema(
        request=TaskCreateSerializer,
        responses={201: TaskSerializer},
        parameters=[OpenApiParameter("Idempotency-Key", str, OpenApiParameter.HEADER, required=False)],
        summary="Order a job (charges its quota)",
    )
    def post(self, request: Request) -> Response:
        body = _body(request)
        key = request.headers.get("Idempotency-Key", "").strip() or None
        if key is not None and len(key) > 255:
            raise errors.InvalidParams(fields={"Idempotency-Key": ["最长 255 个字符"]})
        user: User = request.user  # type: ignore[assignment]
        created = task_create(
            user=user,
            task_type=body.get("type"),
            input_image_url=body.get("inputImageUrl"),
            params=body.get("params"),
            idempotency_key=key,
        )
        response = Response(task_payload(created.task), status=http.HTTP_201_CREATED)
        if created.replayed:
            response["Idempotent-Replayed"] = "true"
        return response


class TaskListApi(APIView):
    @extend_schema(parameters=[TaskListQuery], responses=TaskListSerializer, summary="The user's tasks, newest first")
    def get(self, request: Request) -> Response:
        query = TaskListQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        params = query.validated_data
        tasks, total = task_list(
            user=request.user,  # type: ignore[arg-type]
            limit=params["limit"],
            offset=params["offset"],
            status=params.get("status"),
            task_type=params.get("type"),
        )
        return Response(
            {
                "tasks": [task_payload(t) for t in tasks],
                "total": total,
                "limit": params["limit"],
                "offset": params["offset"],
            }
        )


class TaskDetailApi(APIView):
    @extend_schema(responses=TaskSerializer, summary="One of the user's tasks")
    def get(self, request: Request, task_id: str) -> Response:
        return Response(task_payload(task_get(task_id=task_id, user=request.user)))  # type: ignore[arg-type]


class TaskCancelApi(APIView):
    @extend_schema(request=None, responses=TaskSerializer, summary="Cancel a pending or processing task (refunds it)")
    def post(self, request: Request, task_id: str) -> Response:
        task = task_cancel(task_id=task_id, user=request.user)  # type: ignore[arg-type]
        return Response(task_payload(task_get(task_id=task.pk, user=request.user)))  # type: ignore[arg-type]


class TaskStatusApi(APIView):
    @extend_schema(request=StatusUpdateSerializer, responses=TaskSerializer, summary="Staff: change a task's status")
    def put(self, request: Request, task_id: str) -> Response:
        if not request.user.is_staff:
            raise errors.Forbidden()
        body = _body(request)
        task = task_update_status(
            task_id=task_id,
            status=body.get("status"),
            actor=request.user,
            result_urls=body.get("resultUrls"),
            error_message=body.get("errorMessage"),
        )
        from tasks.selectors import with_refund

        return Response(task_payload(with_refund(Task.objects.filter(pk=task.pk)).get()))


class RunningHubWebhookApi(APIView):
    """RunningHub's callback. It carries no signature, so the URL holds a secret (`?token=`) and
    the body is only a hint: the worker confirms with /task/openapi/outputs before anything changes."""

    permission_classes = [AllowAny]
    authentication_classes = []

    @extend_schema(request=None, responses={200: None}, summary="RunningHub task-finished callback")
    def post(self, request: Request) -> Response:
        token = request.query_params.get("token", "")
        if not hmac.compare_digest(token.encode(), settings.RUNNINGHUB_WEBHOOK_SECRET.encode()):
            raise errors.Forbidden()
        try:
            vendor_task_id = parse_webhook(request.body)
        except ValueError as exc:
            raise errors.InvalidParams(fields={"body": [str(exc)]}) from exc
        task = Task.objects.filter(vendor_task_id=vendor_task_id, status=TaskStatus.PROCESSING).only("id").first()
        if task is not None:
            enqueue_advance(task_id=task.pk, due=None)
        return Response({"received": True})
