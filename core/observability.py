"""Request ids and log context, on top of django-structlog.

The web side: every response carries `X-Request-ID` (the caller's when it is a sane token, else a
new one), and django-structlog binds it to every line of the request. The Celery side: the request
id and user id travel in the headers of every message the request queues (django-structlog's
publish receiver, narrowed here), and the worker binds them, with the Celery task id, to every
line of that step; the step that re-queues itself passes them on, so a whole RunningHub poll chain
carries the id of the request that created the task."""

from __future__ import annotations

import re
import sys
import uuid
from collections.abc import Callable
from typing import Any

import structlog
from celery.signals import task_postrun
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse
from django_structlog.celery import signals as celery_log_signals
from django_structlog.middlewares import RequestMiddleware

REQUEST_ID_HEADER = "X-Request-ID"
# A caller's id is echoed and logged: a short token of safe characters, nothing else.
_ACCEPTED_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
# What a queued message carries from the request that queued it.
FORWARDED_CONTEXT = ("request_id", "user_id")


def _request_id(request: HttpRequest) -> str:
    offered = request.META.get("HTTP_X_REQUEST_ID", "")
    return offered if _ACCEPTED_REQUEST_ID.fullmatch(offered) else uuid.uuid4().hex


class RequestLogMiddleware(RequestMiddleware):
    """django-structlog's request logging (request_started / request_finished / request_failed with
    request_id, user_id and ip bound), plus the X-Request-ID answer and the Sentry tag. Listed first,
    so that every response, errors included, carries the header."""

    sync_capable = True
    async_capable = False

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request_id = _request_id(request)
        # django-structlog reads the id from here (DJANGO_STRUCTLOG_TRUST_UPSTREAM_REQUEST_ID).
        request.META["HTTP_X_REQUEST_ID"] = request_id
        _tag_error_reports(request_id)
        response: HttpResponse = super().__call__(request)  # type: ignore[assignment]
        response[REQUEST_ID_HEADER] = request_id
        return response

    @staticmethod
    def format_request(request: HttpRequest) -> str:
        # The path without its query: the RunningHub webhook URL carries its secret as ?token=.
        return f"{request.method} {request.path}"


def _tag_error_reports(request_id: str) -> None:
    """Sentry's reports of this request or step carry its id. sentry-sdk is loaded only when
    SENTRY_DSN is set (config/settings.py), which spares every other process its ~25 MB."""
    sentry = sys.modules.get("sentry_sdk")
    if sentry is not None:
        sentry.set_tag("request_id", request_id)


def bind_user(user_id: object) -> None:
    """Called once a request's bearer token names its user (DRF authenticates inside the view,
    after the middleware has bound an anonymous user)."""
    structlog.contextvars.bind_contextvars(user_id=user_id)


@receiver(celery_log_signals.modify_context_before_task_publish)
def _forward_request_context(sender: Callable[..., Any], context: dict[str, Any], **kwargs: Any) -> None:
    kept = {key: context[key] for key in FORWARDED_CONTEXT if context.get(key) is not None}
    context.clear()
    context.update(kept)


@receiver(celery_log_signals.bind_extra_task_metadata)
def _bind_celery_task(sender: Callable[..., Any], task: Any, **kwargs: Any) -> None:
    """django-structlog binds Celery's id as `task_id`; here `task_id` is the product's task (bound
    by the step that works on it) and Celery's id is `celery_task_id`."""
    structlog.contextvars.unbind_contextvars("task_id")
    structlog.contextvars.bind_contextvars(celery_task_id=task.request.id, celery_task=task.name)
    request_id = structlog.contextvars.get_contextvars().get("request_id")
    if request_id:
        _tag_error_reports(request_id)


@task_postrun.connect
def _forget_task_context(**kwargs: Any) -> None:
    """A pool thread (or the solo pool) goes on to the next message: the finished step's request
    id and task id must not be on the lines it writes in between."""
    structlog.contextvars.clear_contextvars()
