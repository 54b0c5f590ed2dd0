"""The single place where any exception becomes an API error answer (SPEC §2)."""

from __future__ import annotations

import logging
import math
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.http import Http404, HttpRequest, JsonResponse
from django.utils import translation
from rest_framework import exceptions as drf
from rest_framework.response import Response

from core import errors

logger = logging.getLogger(__name__)


def _flatten_fields(detail: Any) -> dict[str, list[str]]:
    if isinstance(detail, dict):
        fields: dict[str, list[str]] = {}
        for name, messages in detail.items():
            if isinstance(messages, dict):
                for sub, text in _flatten_fields(messages).items():
                    fields[f"{name}.{sub}"] = text
            elif isinstance(messages, list):
                fields[str(name)] = [str(m) for m in messages]
            else:
                fields[str(name)] = [str(messages)]
        return fields
    if isinstance(detail, list):
        return {"non_field_errors": [str(m) for m in detail]}
    return {"non_field_errors": [str(detail)]}


def to_application_error(exc: BaseException) -> errors.ApplicationError:
    """Map any exception to the product's error; unknown ones become 9999 (and get logged)."""
    if isinstance(exc, errors.ApplicationError):
        return exc
    if isinstance(exc, RequestDataTooBig):
        return errors.PayloadTooLarge()
    if isinstance(exc, drf.Throttled):
        wait_seconds = getattr(exc, "wait", None)
        wait = math.ceil(wait_seconds) if wait_seconds is not None else 1
        return errors.RateLimited(headers={"Retry-After": str(max(wait, 1))})
    if isinstance(exc, drf.NotAuthenticated):
        return errors.NotAuthenticated()
    if isinstance(exc, drf.AuthenticationFailed):
        return errors.TokenInvalid()
    if isinstance(exc, drf.ValidationError):
        return errors.InvalidParams(fields=_flatten_fields(exc.detail))
    if isinstance(exc, drf.ParseError):
        return errors.InvalidParams(fields={"body": [str(exc.detail)]})
    if isinstance(exc, drf.MethodNotAllowed):
        return errors.MethodNotAllowed()
    if isinstance(exc, drf.UnsupportedMediaType):
        return errors.UnsupportedMediaType()
    if isinstance(exc, (drf.PermissionDenied, DjangoPermissionDenied)):
        return errors.Forbidden()
    if isinstance(exc, (drf.NotFound, Http404)):
        return errors.NotFound()
    if isinstance(exc, drf.APIException) and exc.status_code < 500:
        return errors.InvalidParams()
    logger.error("Unhandled API error", exc_info=(type(exc), exc, exc.__traceback__))
    return errors.ServerError()


def current_language() -> str:
    """The language LocaleMiddleware chose for this request: English when asked for, else Chinese."""
    return "en" if (translation.get_language() or "").startswith("en") else "zh"


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response:
    error = to_application_error(exc)
    response = Response(error.envelope(current_language()), status=error.http_status)
    for name, value in error.headers.items():
        response[name] = value
    return response


def json_error_response(request: HttpRequest, error: errors.ApplicationError) -> JsonResponse:
    """For errors raised outside DRF views (unknown paths, middleware failures)."""
    response = JsonResponse(
        error.envelope(current_language()), status=error.http_status, json_dumps_params={"ensure_ascii": False}
    )
    for name, value in error.headers.items():
        response[name] = value
    return response
