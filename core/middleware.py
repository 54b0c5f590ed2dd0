"""Checks on every `/api/` request before any view sees it."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from core import errors
from core.exceptions import json_error_response
from core.parsers import unstorable

REFUSED = "不能包含 NUL 或无效字符"


class RefuseUnstorableText:
    """A path, query parameter or header holding NUL (or an unpaired surrogate) is 4002: such text
    would fail in PostgreSQL as a 500 wherever it reached a query, and no legitimate client sends it
    (RFC 9110 forbids NUL in header values). JSON bodies get the same check in core.parsers."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path_info.startswith("/api/"):
            where = self._refused_part(request)
            if where is not None:
                return json_error_response(request, errors.InvalidParams(fields={where: [REFUSED]}))
        return self.get_response(request)

    @staticmethod
    def _refused_part(request: HttpRequest) -> str | None:
        if unstorable(request.path_info):
            return "path"
        for name, values in request.GET.lists():
            if unstorable(name) or any(unstorable(value) for value in values):
                return "query"
        for name, value in request.headers.items():
            if unstorable(value):
                return name
        return None
