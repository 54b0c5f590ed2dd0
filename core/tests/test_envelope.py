"""Every `/api/` answer, for every method and path, is the envelope (SPEC §8) — checked with
Django's CSRF checks on, as a browser-less client meets them in production."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from core.tests.routes import api_routes

pytestmark = pytest.mark.django_db

METHODS = ["get", "post", "put", "patch", "delete", "options", "head", "trace"]
# The OpenAPI document and its UI are read as they are (README: the one exception to the envelope).
DOCUMENTS = {("schema", "GET"), ("schema", "HEAD"), ("docs", "GET"), ("docs", "HEAD")}


@pytest.fixture
def strict() -> Client:
    return Client(enforce_csrf_checks=True, raise_request_exception=False)


def send(client: Client, method: str, path: str) -> Any:
    if method in ("post", "put", "patch", "delete"):
        return getattr(client, method)(path, "{}", content_type="application/json")
    return getattr(client, method)(path)


def assert_envelope(response: Any, method: str) -> None:
    assert response["Content-Type"].startswith("application/json"), (response.status_code, response.content[:200])
    if method != "head":
        body = response.json()
        assert isinstance(body, dict) and isinstance(body.get("success"), bool), body
        if response.status_code >= 400:
            assert body["success"] is False and isinstance(body["error"]["code"], int), body


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("path", ["/api/no/such/thing", "/api/task/list/extra", "/api/"])
def test_unknown_api_path_is_the_404_envelope_for_every_method(strict: Client, method: str, path: str) -> None:
    response = send(strict, method, path)
    assert response.status_code == 404
    assert_envelope(response, method)
    if method != "head":
        assert response.json() == {"success": False, "error": {"code": 404, "message": "接口不存在"}}


@pytest.mark.parametrize("method", METHODS)
def test_every_route_answers_every_method_in_the_envelope(strict: Client, method: str) -> None:
    for route in api_routes():
        if (route.name, method.upper()) in DOCUMENTS:
            continue
        response = send(strict, method, route.path())
        assert response.status_code < 500, (route.name, method, response.content[:200])
        assert_envelope(response, method)


def test_method_not_allowed_on_the_schema_is_405_in_the_envelope(strict: Client) -> None:
    for path in ("/api/schema", "/api/docs"):
        response = strict.post(path)
        assert response.status_code == 405
        assert response.json()["error"]["code"] == 4002


def test_a_host_not_allowed_is_400_in_the_envelope() -> None:
    response = Client(HTTP_HOST="evil.example", raise_request_exception=False).get("/api/quota")
    assert response.status_code == 400
    assert_envelope(response, "get")
    assert response.json()["error"]["code"] == 4002
