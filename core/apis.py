from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.http.response import HttpResponseBase
from django.utils import timezone
from django.views import defaults, static
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from kombu import Connection

from core import errors
from core.exceptions import json_error_response

logger = logging.getLogger(__name__)


def _check_database() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return "ok"


def _check_broker() -> str:
    # A broker that accepts the connection but never answers must fail the check too (read timeout).
    # (socket_* for Redis, *_timeout for RabbitMQ; each transport ignores the other's.)
    options = {**settings.CELERY_BROKER_TRANSPORT_OPTIONS, "socket_timeout": 2, "socket_connect_timeout": 2}
    options.update(read_timeout=2, write_timeout=2)
    with Connection(settings.CELERY_BROKER_URL, transport_options=options, connect_timeout=2) as conn:
        conn.ensure_connection(max_retries=1, timeout=2)
    return "ok"


def _check_cache() -> str:
    """The shared cache holds the throttles; the Redis cache gives up after 2 s (settings)."""
    probe = uuid.uuid4().hex
    cache.set("health:probe", probe, timeout=10)
    if cache.get("health:probe") != probe:
        raise RuntimeError("the cache did not return what was stored")
    return "ok"


@never_cache
def health(request: HttpRequest) -> JsonResponse:
    """Database (connect timeout 5 s), broker (2 s) and cache (2 s): a dead dependency answers 503
    within seconds, never hangs the probe."""
    checks: dict[str, str] = {}
    for name, check in (("database", _check_database), ("broker", _check_broker), ("cache", _check_cache)):
        try:
            checks[name] = check()
        except Exception as exc:  # any failure of a dependency is a failed check, not a 500
            logger.warning("health check %s failed: %s", name, exc)
            checks[name] = "error"
    healthy = all(value == "ok" for value in checks.values())
    body: dict[str, Any] = {
        "status": "ok" if healthy else "error",
        "timestamp": timezone.now().isoformat(),
        "checks": checks,
    }
    return JsonResponse(body, status=200 if healthy else 503)


# Any method: an unknown path is 404 before CSRF could make it an HTML 403.
@csrf_exempt
def api_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return json_error_response(request, errors.EndpointNotFound())


def read_only_document(view: Callable[..., HttpResponseBase]) -> Callable[..., HttpResponseBase]:
    """The OpenAPI document and Swagger UI answer GET and HEAD as they are; any other method gets
    the envelope's 405 rather than their renderers' YAML or HTML error."""

    @wraps(view)
    def read_only(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if request.method not in ("GET", "HEAD"):
            response = json_error_response(request, errors.MethodNotAllowed())
            response["Allow"] = "GET, HEAD"
            return response
        return view(request, *args, **kwargs)

    return csrf_exempt(read_only)


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    """Django's 400 (a Host not allowed, too many fields ...) in the envelope under /api/."""
    if request.path.startswith("/api/"):
        return json_error_response(request, errors.InvalidParams())
    return defaults.bad_request(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    if request.path.startswith("/api/"):
        return json_error_response(request, errors.ServerError())
    return defaults.server_error(request)


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    if request.path.startswith("/api/"):
        return api_not_found(request)
    return defaults.page_not_found(request, exception)


def serve_media(request: HttpRequest, path: str) -> HttpResponseBase:
    """Files of the local storage backend (read MEDIA_ROOT per request)."""
    return static.serve(request, path, document_root=str(settings.MEDIA_ROOT))
