"""The real URLconf plus views that fail on purpose, for the error-handling tests."""

from django.http import HttpRequest, HttpResponse
from django.urls import include, path
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core import errors


class RaiseApi(APIView):
    permission_classes = [AllowAny]
    authentication_classes = []

    def get(self, request: Request, name: str) -> Response:
        if name == "boom":
            raise RuntimeError("secret internals /etc/passwd")
        error_class = next(c for c in errors_all() if c.__name__ == name)
        raise error_class()


def errors_all() -> list[type[errors.ApplicationError]]:
    found: list[type[errors.ApplicationError]] = []
    pending = [errors.ApplicationError]
    while pending:
        cls = pending.pop()
        found.append(cls)
        pending.extend(cls.__subclasses__())
    return found


def plain_boom(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("plain view failure")


urlpatterns = [
    path("api/test/raise/<str:name>", RaiseApi.as_view()),
    path("api/test/plain-boom", plain_boom),
    path("", include("config.urls")),
]
handler404 = "core.apis.not_found"
handler500 = "core.apis.server_error"
