"""X-Request-ID on every response (SPEC §8) and the log lines of a request: the id bound to each,
the user once the bearer token names one, no query strings (the webhook secret), no secrets."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client
from rest_framework.test import APIClient

from accounts.models import User
from accounts.tests.factories import PASSWORD
from config.logging import formatter
from core.tests.logs import captured_log_lines
from core.tests.logscan import SecretScanner

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("get", "/health", 200),
        ("get", "/api/auth/me", 401),
        ("get", "/api/no-such-endpoint", 404),
        ("post", "/api/task/create", 401),
        ("get", "/admin/login/", 200),
        ("get", "/not-an-api-path", 404),
    ],
)
def test_every_response_carries_a_request_id(method: str, path: str, status: int) -> None:
    response = getattr(Client(), method)(path)
    assert response.status_code == status
    assert len(response["X-Request-ID"]) == 32


def test_the_callers_request_id_is_echoed_and_a_bad_one_replaced() -> None:
    client = Client()
    assert client.get("/health", HTTP_X_REQUEST_ID="lb-7f3a:01").headers["X-Request-ID"] == "lb-7f3a:01"
    for bad in ("a" * 200, "two words", "x\ny", ""):
        answered = client.get("/health", HTTP_X_REQUEST_ID=bad).headers["X-Request-ID"]
        assert answered != bad and len(answered) == 32


def test_a_server_error_carries_the_request_id(settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from core import apis

    def broken() -> str:
        raise RuntimeError("boom")

    monkeypatch.setattr(apis, "_check_database", broken)
    response = Client().get("/health", HTTP_X_REQUEST_ID="probe-1")
    assert response.status_code == 503 and response["X-Request-ID"] == "probe-1"


def test_request_lines_carry_the_id_and_the_user(member: User, client_for: Callable[[User], APIClient]) -> None:
    with captured_log_lines() as logs:
        response = client_for(member).get("/api/quota", HTTP_X_REQUEST_ID="quota-check-1")
    assert response.status_code == 200
    lines = [r for r in logs.records() if r.get("request_id") == "quota-check-1"]
    assert [r["event"] for r in lines] == ["request_started", "request_finished"]
    assert lines[-1]["user_id"] == member.pk and lines[-1]["code"] == 200


def test_the_webhook_secret_in_the_query_never_reaches_the_log(settings: Any) -> None:
    with captured_log_lines() as logs:
        Client().post(f"/api/webhooks/runninghub?token={settings.RUNNINGHUB_WEBHOOK_SECRET}", b"{}", "application/json")
    text = "\n".join(logs.lines)
    assert "/api/webhooks/runninghub" in text
    assert settings.RUNNINGHUB_WEBHOOK_SECRET not in text


def test_login_logs_neither_the_password_nor_the_tokens(member: User) -> None:
    with captured_log_lines() as logs:
        answer = Client().post(
            "/api/auth/login", {"username": member.username, "password": PASSWORD}, content_type="application/json"
        )
        token = answer.json()["data"]["token"]
        Client().get("/api/auth/me", HTTP_AUTHORIZATION=f"Bearer {token}")
    text = "\n".join(logs.lines)
    assert logs.lines and PASSWORD not in text and token not in text


@pytest.mark.parametrize(
    "leak",
    [
        {"password": "hunter2-hunter2"},
        {"api_key": "sk-live-0123456789"},
        {"detail": "GET https://x.example/cb?token=s3cr3t-value&ok=1"},
        {"detail": "https://bucket.cos.example/a.png?q-sign-algorithm=sha1&q-ak=AKIDEXAMPLE&q-signature=abcdef"},
        {"detail": "Bearer eyJhbGciOiJIUzI1NiJ9.eyJ1c2VyX2lkIjoxfQ.c2lnbmF0dXJl"},
    ],
)
def test_secrets_handed_to_a_logger_are_masked(leak: dict[str, str]) -> None:
    record = logging.LogRecord("probe", logging.INFO, __file__, 1, "event with a secret", None, None)
    for key, value in leak.items():
        setattr(record, key, value)
    line = formatter(json=True).format(record)
    for secret in ("hunter2-hunter2", "sk-live-0123456789", "s3cr3t-value", "AKIDEXAMPLE", "abcdef", "c2lnbmF0dXJl"):
        assert secret not in line
    assert "[redacted]" in line


def test_the_run_wide_scan_would_catch_a_secret_in_a_line(settings: Any) -> None:
    scanner = SecretScanner()
    for message in ("task 42 done", f"calling with key {settings.RUNNINGHUB_API_KEY}", f"pw={PASSWORD}"):
        scanner.emit(logging.LogRecord("probe", logging.INFO, __file__, 1, message, None, None))
    assert len(scanner.leaks) == 2
    assert "RUNNINGHUB_API_KEY" in scanner.leaks[0] and "test user password" in scanner.leaks[1]
