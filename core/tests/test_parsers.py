"""Request bodies, query strings, paths and headers the API cannot read or PostgreSQL cannot store
are 4002 in the envelope (SPEC §8), never a 5xx; JSON is the only body format except where a file
is expected."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from rest_framework.parsers import MultiPartParser
from rest_framework.test import APIClient

from accounts.models import User
from core.parsers import SafeJSONParser
from core.tests.routes import api_routes

pytestmark = pytest.mark.django_db

TASK_BODY = {"type": "basic_clean", "inputImageUrl": "https://images.example.com/a.png"}


def assert_4002(response: Any, status: int = 400) -> None:
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["success"] is False and body["error"]["code"] == 4002, body


@pytest.fixture
def raw() -> Client:
    """A client that returns the 500 page instead of raising, as a real server would."""
    return Client(raise_request_exception=False)


@pytest.mark.parametrize(
    "body",
    [
        "[" * 200_000,
        '{"username": ' * 50_000,
        "[" * 100 + "]" * 100,  # parses, but no body of this API nests this deep
        '{"username": "a", "password": NaN}',
        '{"username": "a", "password": "b"',
        b'{"username": "\xff\xfe", "password": "b"}',
        "",
    ],
    ids=["deep-array", "deep-object", "nested-100", "nan", "truncated", "bad-utf8", "empty"],
)
def test_unreadable_login_body_is_4002_before_any_throttle_or_view(raw: Client, body: str | bytes) -> None:
    # The login username throttle reads the body before authentication and before the view.
    assert_4002(raw.post("/api/auth/login", body, content_type="application/json"))


@pytest.mark.parametrize(
    "text",
    [r"a\u0000b", r"\u0000", r"\ud800", r"x\udfffy"],
    ids=["nul", "only-nul", "lone-high-surrogate", "lone-low-surrogate"],
)
@pytest.mark.parametrize("where", ["value", "key", "nested"])
def test_text_postgresql_refuses_is_4002_anywhere_in_a_json_body(
    raw: Client, member: User, client_for: Any, text: str, where: str
) -> None:
    bodies = {
        "value": f'{{"username": "{text}", "password": "p"}}',
        "key": f'{{"username": "u", "password": "p", "{text}": 1}}',
        "nested": (
            '{"type": "model_pose12", "inputImageUrl": "https://images.example.com/a.png",'
            f' "params": {{"scene": ["{text}"]}}}}'
        ),
    }
    path = "/api/task/create" if where == "nested" else "/api/auth/login"
    client = client_for(member) if where == "nested" else raw
    assert_4002(client.post(path, bodies[where], content_type="application/json"))


def test_deep_webhook_body_with_the_right_token_is_4002(raw: Client, settings: Any) -> None:
    url = f"/api/webhooks/runninghub?token={settings.RUNNINGHUB_WEBHOOK_SECRET}"
    assert_4002(raw.post(url, "[" * 200_000, content_type="application/json"))


def test_body_over_the_cap_is_413_before_parsing(raw: Client, settings: Any) -> None:
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    body = '{"username": "' + "u" * 2000 + '", "password": "p"}'
    assert_4002(raw.post("/api/auth/login", body, content_type="application/json"), status=413)


@pytest.mark.parametrize(
    "path",
    [
        "/api/task/list?status=%00",
        "/api/task/list?limit=1%00",
        "/api/task/list?x%00y=1",
        "/api/task/%00",
        "/api/task/0000%00/cancel",
        "/api/no%00where",
    ],
)
def test_nul_in_query_or_path_is_4002(member: User, client_for: Any, path: str) -> None:
    client = client_for(member)
    response = client.post(path) if path.endswith("cancel") else client.get(path)
    assert_4002(response)


def test_nul_in_idempotency_key_is_4002(member: User, client_for: Any) -> None:
    response = client_for(member).post("/api/task/create", TASK_BODY, format="json", HTTP_IDEMPOTENCY_KEY="a\x00b")
    assert_4002(response)


def test_nul_in_any_header_is_4002(member: User, client_for: Any) -> None:
    assert_4002(client_for(member).get("/api/task/list", HTTP_X_CLIENT_NOTE="a\x00b"))


def test_webhook_token_with_nul_is_refused_in_the_envelope(raw: Client) -> None:
    assert_4002(raw.post("/api/webhooks/runninghub?token=%00", "{}", content_type="application/json"))


def test_json_is_the_body_format_of_every_endpoint_and_multipart_only_for_the_upload() -> None:
    parsers: dict[str, list[type]] = {}
    for route in api_routes():
        parsers[route.name] = route.parser_classes
    expected: dict[str, list[type]] = {name: [SafeJSONParser] for name in parsers}
    expected["media-upload"] = [MultiPartParser]
    assert parsers == expected


def test_form_bodies_are_415_in_the_envelope(raw: Client) -> None:
    response = raw.post("/api/auth/login", {"username": "a", "password": "b"})
    assert_4002(response, status=415)


def test_upload_refuses_json(member: User, client_for: Any) -> None:
    assert_4002(client_for(member).post("/api/media/upload", {"file": "x"}, format="json"), status=415)


def test_api_client_default_format_still_works(member: User) -> None:
    # The parser accepts everything ordinary clients send, Chinese text included.
    response = APIClient().post("/api/auth/login", {"username": "用户", "password": "密码"}, format="json")
    assert response.status_code == 400 and response.json()["error"]["code"] == 2001
